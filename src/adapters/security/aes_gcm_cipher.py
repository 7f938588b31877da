import base64
import binascii
import hashlib
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.ports.security import SecretCipher

_VERSION = b"\x01"
_KEY_ID_SIZE = 8
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZE = 32
_HEADER_SIZE = len(_VERSION) + _KEY_ID_SIZE
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_KEY_ID_SIZE]


class AesGcmCipher(SecretCipher):
    """AES-256-GCM. Blob = version (1) | key id (8, SHA-256 prefix of the key) | nonce (12) | ciphertext + tag.

    The first key encrypts; every key decrypts, so a new key is put first and the old ones kept until re-encrypted.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one master key is required")
        if any(len(key) != _KEY_SIZE for key in keys):
            raise ValueError(f"master keys must be {_KEY_SIZE} bytes")
        self._current_header = _VERSION + _key_id(keys[0])
        self._current = AESGCM(keys[0])
        self._by_id = {_key_id(key): AESGCM(key) for key in reversed(keys)}  # first key wins a (theoretical) clash

    def encrypt(self, plaintext: str, associated_data: str) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._current.encrypt(nonce, plaintext.encode(), associated_data.encode())
        return self._current_header + nonce + sealed

    def decrypt(self, ciphertext: bytes, associated_data: str) -> str | None:
        if len(ciphertext) < _HEADER_SIZE + _NONCE_SIZE + _TAG_SIZE or ciphertext[:1] != _VERSION:
            return None
        aead = self._by_id.get(ciphertext[1:_HEADER_SIZE])
        if aead is None:
            return None
        nonce = ciphertext[_HEADER_SIZE : _HEADER_SIZE + _NONCE_SIZE]
        try:
            return aead.decrypt(nonce, ciphertext[_HEADER_SIZE + _NONCE_SIZE :], associated_data.encode()).decode()
        except (InvalidTag, UnicodeError):
            return None

    def needs_reencryption(self, ciphertext: bytes) -> bool:
        return ciphertext[:_HEADER_SIZE] != self._current_header


def parse_master_keys(value: str) -> list[bytes]:
    """Comma-separated urlsafe-base64 32-byte keys (padding optional), current key first."""
    keys: list[bytes] = []
    for position, item in enumerate(value.split(","), start=1):
        text = item.strip()
        if not _URLSAFE_B64.fullmatch(text):
            raise ValueError(f"master key #{position} is not urlsafe base64")
        body = text.rstrip("=")
        try:
            key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except binascii.Error:
            raise ValueError(f"master key #{position} is not urlsafe base64") from None
        if len(key) != _KEY_SIZE:
            raise ValueError(f"master key #{position} must decode to {_KEY_SIZE} bytes, not {len(key)}")
        keys.append(key)
    return keys


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(_KEY_SIZE)).rstrip(b"=").decode()
