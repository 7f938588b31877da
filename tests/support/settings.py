"""Settings for the suite: the groups as tests want them, and one way to change a few fields of some groups."""

from collections.abc import Mapping

import msgspec

from entrypoints.settings import DatabaseSettings, ProviderSettings, RateLimitSettings, SecuritySettings, Settings

TEST_JWT_SECRET = "test-secret-for-the-suite-only-0123456789abcdef"
TEST_SECRET_KEYS = "dGVzdC1tYXN0ZXIta2V5LWZvci10aGUtc3VpdGUtMDA"


def suite_settings(database_url: str) -> Settings:
    """Fixed secrets, the cheapest hashing, an instant simulator, small pools, and no per-minute limits: the suite
    sends many requests per user (tests of the limits turn them on)."""
    return Settings(
        database=DatabaseSettings(url=database_url, pool_size=5, max_overflow=5),
        security=SecuritySettings(jwt_secret=TEST_JWT_SECRET, secret_keys=TEST_SECRET_KEYS, argon2_profile="cheapest"),
        providers=ProviderSettings(simulator_token_delay_ms=0),
        rate_limits=RateLimitSettings(user_rpm=0, key_rpm=0),
    )


def replace_settings(settings: Settings, **groups: Mapping[str, object]) -> Settings:
    """`replace_settings(settings, rate_limits={"user_rpm": 3})`: those fields of those groups changed, the rest
    kept."""
    changed = {name: msgspec.structs.replace(getattr(settings, name), **fields) for name, fields in groups.items()}
    return msgspec.structs.replace(settings, **changed)
