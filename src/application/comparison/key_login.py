import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.accounts.sessions import SessionTokens
from application.patterns import whole
from application.ports.clock import Clock
from application.ports.comparison import ApiKeys, NonceStore
from application.ports.persistence import UnitOfWork
from application.ports.security import SecretCipher
from application.views import TokenPair
from domain.api_key import KeyRevoked, SubscriptionInactive, SubscriptionStatus
from domain.hmac_signature import WINDOW_SECONDS, InvalidSignature, ReplayedNonce, SignedLogin, StaleTimestamp
from domain.user import Principal

NONCE_RETENTION = timedelta(seconds=2 * WINDOW_SECONDS + 60)
_DUMMY_SECRET = secrets.token_urlsafe(32)


class KeyLoginRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9_-]{1,128}"))]
    username: Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9_.-]{1,64}"))]
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=10**11)]
    nonce: Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9_-]{16,64}"))]
    signature: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=256,
            description=(
                "Lowercase hex HMAC-SHA256 of `{api_key}\\n{username}\\n{timestamp}\\n{nonce}`, keyed with the "
                f"key's `secret_key`. The example is signed with the secret `{examples.SECRET_KEY}`: it is stale, so "
                "sign a fresh timestamp and nonce with your own key's secret."
            ),
        ),
    ]

    example: ClassVar[dict[str, Any]] = {
        "api_key": examples.LOGIN.api_key,
        "username": examples.LOGIN.username,
        "timestamp": examples.LOGIN.timestamp,
        "nonce": examples.LOGIN.nonce,
        "signature": examples.SIGNATURE,
    }


class KeyTokenPair(TokenPair, frozen=True, kw_only=True):
    api_key: str
    typeid: str

    example: ClassVar[dict[str, Any]] = TokenPair.example | {"api_key": examples.API_KEY, "typeid": examples.TYPEID}


class KeyLogin:
    """HMAC login: prove possession of a key's secret, get a key-scoped token pair. `signature` is
    `hex(HMAC_SHA256(secret_key, "{api_key}\\n{username}\\n{timestamp}\\n{nonce}"))`; the timestamp must be within
    300 s of the server's clock and each nonce works once per key. A wrong signature, an unknown key and a
    username that does not own the key all answer the same `invalid_signature`. In Python:

        timestamp, nonce = int(time.time()), secrets.token_urlsafe(16)
        message = f"{api_key}\\n{username}\\n{timestamp}\\n{nonce}".encode()
        signature = hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
    """

    def __init__(
        self,
        keys: ApiKeys,
        nonces: NonceStore,
        cipher: SecretCipher,
        sessions: SessionTokens,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._keys = keys
        self._nonces = nonces
        self._cipher = cipher
        self._sessions = sessions
        self._uow = uow
        self._clock = clock

    async def __call__(self, request: KeyLoginRequest) -> KeyTokenPair:
        now = self._clock.now()
        login = SignedLogin(request.api_key, request.username, request.timestamp, request.nonce)
        if not login.is_fresh(int(now.timestamp())):
            raise StaleTimestamp
        found = await self._keys.credentials(request.api_key)
        secret = None if found is None else self._cipher.decrypt(found.secret_ciphertext, request.api_key)
        valid = login.verify(secret or _DUMMY_SECRET, request.signature)
        owner = found is not None and hmac.compare_digest(found.username.lower(), request.username.lower())
        if found is None or secret is None or not valid or not owner:
            raise InvalidSignature
        if not await self._nonces.claim(request.api_key, request.nonce, now + NONCE_RETENTION):
            raise ReplayedNonce
        await self._uow.commit()
        key = found.key
        match key.subscription(now):
            case SubscriptionStatus.REVOKED:
                raise KeyRevoked
            case SubscriptionStatus.EXPIRED | SubscriptionStatus.SUSPENDED:
                raise SubscriptionInactive
        pair = await self._sessions.start(
            Principal(user_id=key.user_id, role=found.role, api_key=key.api_key),
            sessions_valid_after=found.sessions_valid_after,
        )
        await self._uow.commit()
        return KeyTokenPair(**msgspec.structs.asdict(pair), api_key=key.api_key, typeid=key.typeid)
