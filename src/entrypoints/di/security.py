"""Security adapters: password hashing, the cipher of stored API key secrets, signed access tokens."""

from dishka import Provider, Scope, provide

from adapters.security.aes_gcm_cipher import AesGcmCipher, parse_master_keys
from adapters.security.argon2_hasher import Argon2PasswordHasher
from adapters.security.jwt_tokens import JwtAccessTokens
from application.ports.security import AccessTokens, PasswordHasher, SecretCipher
from entrypoints.settings import SecuritySettings


class SecurityProvider(Provider):
    scope = Scope.APP

    @provide
    def password_hasher(self, security: SecuritySettings) -> PasswordHasher:
        return Argon2PasswordHasher.for_profile(security.argon2_profile)

    @provide
    def secret_cipher(self, security: SecuritySettings) -> SecretCipher:
        return AesGcmCipher(parse_master_keys(security.require_secret_keys()))

    @provide
    def access_tokens(self, security: SecuritySettings) -> AccessTokens:
        return JwtAccessTokens(security.require_jwt_secret())
