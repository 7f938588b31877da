"""HMAC login: `hex(HMAC_SHA256(secret, f"{api_key}\\n{username}\\n{timestamp}\\n{nonce}"))`, checked in constant
time, within ±300 s of the server's clock."""

import hashlib
import hmac
from dataclasses import dataclass

from domain.errors import Unauthenticated

WINDOW_SECONDS = 300


class InvalidSignature(Unauthenticated):
    code = "invalid_signature"
    default_detail = "The signature does not match."


class StaleTimestamp(Unauthenticated):
    code = "stale_timestamp"
    default_detail = "The timestamp is more than 300 seconds away from the server's time."


class ReplayedNonce(Unauthenticated):
    code = "replayed_nonce"
    default_detail = "This nonce was already used with this key."


@dataclass(frozen=True, slots=True)
class SignedLogin:
    """The signed fields; none may contain a newline, so the canonical message is unambiguous."""

    api_key: str
    username: str
    timestamp: int
    nonce: str

    def message(self) -> bytes:
        return f"{self.api_key}\n{self.username}\n{self.timestamp}\n{self.nonce}".encode()

    def sign(self, secret: str) -> str:
        return hmac.new(secret.encode(), self.message(), hashlib.sha256).hexdigest()

    def verify(self, secret: str, signature: str) -> bool:
        """Constant-time; a signature of the wrong length or case compares unequal, it does not raise."""
        return hmac.compare_digest(self.sign(secret).encode(), signature.encode("utf-8", "surrogatepass"))

    def is_fresh(self, now: int) -> bool:
        return abs(now - self.timestamp) <= WINDOW_SECONDS
