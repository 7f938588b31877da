import msgspec

from application.ports.comparison import ApiKeys
from application.ports.persistence import UnitOfWork
from application.ports.security import SecretCipher


class RotationReport(msgspec.Struct, frozen=True, kw_only=True):
    reencrypted: int
    current: int
    unreadable: list[str]


class ReencryptSecrets:
    """After a master-key rotation (new key first in SECRET_KEYS, old ones after it): re-encrypt every API key
    secret with the new key, in one transaction, so the old keys can then be removed. Secrets no configured key
    opens are reported, never touched."""

    def __init__(self, keys: ApiKeys, cipher: SecretCipher, uow: UnitOfWork) -> None:
        self._keys = keys
        self._cipher = cipher
        self._uow = uow

    async def __call__(self) -> RotationReport:
        reencrypted, current, unreadable = 0, 0, []
        for api_key, ciphertext in await self._keys.ciphertexts():
            if not self._cipher.needs_reencryption(ciphertext):
                current += 1
                continue
            secret = self._cipher.decrypt(ciphertext, api_key)
            if secret is None:
                unreadable.append(api_key)
                continue
            await self._keys.set_ciphertext(api_key, self._cipher.encrypt(secret, api_key))
            reencrypted += 1
        await self._uow.commit()
        return RotationReport(reencrypted=reencrypted, current=current, unreadable=unreadable)
