"""Configuration: environment variables (and `.env`) -> validated, frozen settings, one small group per concern.

Each field names its environment variable (`name=`), so a variable is found by its name and a bad value is reported
by it. The composition root hands each group only to what needs it (`entrypoints.container`); adding a setting is
one field in the group of its concern (and a line in the README's table).
"""

import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec
from dotenv import dotenv_values
from msgspec import Meta, field

from adapters.security.aes_gcm_cipher import generate_master_key, parse_master_keys
from application.catalog.use_cases import ProviderName
from domain.credits import Credits, InvalidAmount
from domain.wallet import MAX_BALANCE

MIN_JWT_SECRET_BYTES = 32

Environment = Literal["development", "production"]
NonNegative = Annotated[int, Meta(ge=0)]
Port = Annotated[int, Meta(ge=0, le=65535)]


class SettingsError(Exception):
    """Raised when the configuration cannot be used; its message names the variable."""


class RuntimeSettings(msgspec.Struct, frozen=True, kw_only=True):
    environment: Environment = field(default="development", name="CREDITGATE_ENV")
    log_level: Literal["debug", "info", "warning", "error"] = field(default="info", name="LOG_LEVEL")
    data_dir: str = field(default=".data", name="DATA_DIR")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the server listens and which peers it believes (TLS itself is `serve --ssl-*`, or a proxy's)."""

    port: Port = field(default=3000, name="PORT")
    trusted_proxies: str = field(default="", name="TRUSTED_PROXIES")
    cors_allowed_origins: str = field(default="", name="CORS_ALLOWED_ORIGINS")

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _comma_list(self.trusted_proxies)

    @property
    def cors_origin_list(self) -> list[str]:
        return _comma_list(self.cors_allowed_origins)


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True):
    token: str | None = field(default=None, name="METRICS_TOKEN")
    allowed_networks: str = field(default="127.0.0.1/32,::1/128", name="METRICS_ALLOWED_NETWORKS")

    @property
    def network_list(self) -> list[str]:
        return _comma_list(self.allowed_networks)


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = field(default=None, name="DATABASE_URL")
    pool_size: Annotated[int, Meta(ge=1, le=200)] = field(default=10, name="DB_POOL_SIZE")
    max_overflow: Annotated[int, Meta(ge=0, le=200)] = field(default=10, name="DB_MAX_OVERFLOW")
    timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = field(default=5.0, name="DB_TIMEOUT_SECONDS")
    pgbouncer: bool = field(default=False, name="DB_PGBOUNCER")

    def require_url(self) -> str:
        if not self.url:
            raise SettingsError("DATABASE_URL is not set and no embedded database was started")
        return self.url


class SecuritySettings(msgspec.Struct, frozen=True, kw_only=True):
    jwt_secret: str | None = field(default=None, name="JWT_SECRET")
    secret_keys: str | None = field(default=None, name="SECRET_KEYS")
    argon2_profile: Literal["rfc9106_low_memory", "cheapest"] = field(
        default="rfc9106_low_memory", name="ARGON2_PROFILE"
    )

    def require_jwt_secret(self) -> str:
        if not self.jwt_secret:
            raise SettingsError("JWT_SECRET is not set")
        return self.jwt_secret

    def require_secret_keys(self) -> str:
        if not self.secret_keys:
            raise SettingsError("SECRET_KEYS is not set")
        return self.secret_keys


class AccountSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What an account starts with, how hard it is throttled at the door, and what it may keep stored."""

    signup_credits: str = field(default="0", name="SIGNUP_CREDITS")
    login_failure_limit: NonNegative = field(default=10, name="LOGIN_FAILURE_LIMIT")
    registrations_per_hour: NonNegative = field(default=30, name="RATE_LIMIT_REGISTRATIONS_PER_HOUR")
    reference_storage_bytes_per_user: NonNegative = field(
        default=16 * 1024 * 1024, name="REFERENCE_STORAGE_BYTES_PER_USER"
    )


class RateLimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Requests and tokens per minute, and where the windows are counted (memory, or Redis when set)."""

    user_rpm: NonNegative = field(default=600, name="RATE_LIMIT_USER_RPM")
    key_rpm: NonNegative = field(default=600, name="RATE_LIMIT_KEY_RPM")
    user_tpm: NonNegative = field(default=0, name="RATE_LIMIT_USER_TPM")
    key_tpm: NonNegative = field(default=0, name="RATE_LIMIT_KEY_TPM")
    redis_url: str | None = field(default=None, name="REDIS_URL")
    redis_prefix: str = field(default="creditgate:ratelimit:", name="RATE_LIMIT_REDIS_PREFIX")
    redis_timeout_ms: Annotated[int, Meta(ge=10, le=5000)] = field(default=200, name="RATE_LIMIT_REDIS_TIMEOUT_MS")


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The model providers: the simulator, the vendors' keys and base URLs, and the upstream timeouts."""

    simulator_token_delay_ms: NonNegative = field(default=15, name="SIMULATOR_TOKEN_DELAY_MS")
    openai_api_key: str | None = field(default=None, name="OPENAI_API_KEY")
    openai_base_url: str | None = field(default=None, name="OPENAI_BASE_URL")
    anthropic_api_key: str | None = field(default=None, name="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = field(default=None, name="ANTHROPIC_BASE_URL")
    gemini_api_key: str | None = field(default=None, name="GEMINI_API_KEY")
    gemini_base_url: str | None = field(default=None, name="GEMINI_BASE_URL")
    connect_timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = field(
        default=5.0, name="UPSTREAM_CONNECT_TIMEOUT_SECONDS"
    )
    read_timeout_seconds: Annotated[float, Meta(gt=0, le=600)] = field(
        default=60.0, name="UPSTREAM_READ_TIMEOUT_SECONDS"
    )
    instances: str = field(default="{}", name="PROVIDER_INSTANCES")

    def instance_map(self) -> dict[str, "ProviderInstance"]:
        """`PROVIDER_INSTANCES`, checked by `load_settings`."""
        return msgspec.json.decode(self.instances, type=dict[InstanceName, ProviderInstance])


InstanceName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
BUILT_IN_PROVIDERS = frozenset(get_args(ProviderName))


class ProviderInstance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One more endpoint of a wire protocol, with its own key: a deployment names it like a built-in provider."""

    protocol: Literal["openai", "anthropic", "gemini"]
    base_url: str | None = None
    api_key: str | None = None


class RoutingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The circuit breaker of each deployment (per process)."""

    breaker_failures: Annotated[int, Meta(ge=1, le=1000)] = field(default=3, name="ROUTING_BREAKER_FAILURES")
    breaker_cooldown_seconds: Annotated[float, Meta(gt=0, le=3600)] = field(
        default=30.0, name="ROUTING_BREAKER_COOLDOWN_SECONDS"
    )
    max_retry_after_seconds: Annotated[float, Meta(ge=0, le=3600)] = field(
        default=60.0, name="ROUTING_MAX_RETRY_AFTER_SECONDS"
    )


class LocalModelSettings(msgspec.Struct, frozen=True, kw_only=True):
    """`mode` on: `serve` runs the local model when the `local` extra is installed, unless `base_url` names a server
    (`serve` sets it, and the key, for its workers; or point it at any OpenAI-compatible server)."""

    mode: Literal["on", "off"] = field(default="on", name="LOCAL_MODEL")
    threads: Annotated[int, Meta(ge=1, le=64)] = field(default=2, name="LOCAL_MODEL_THREADS")
    context: Annotated[int, Meta(ge=256, le=131072)] = field(default=4096, name="LOCAL_MODEL_CONTEXT")
    base_url: str | None = field(default=None, name="LOCAL_MODEL_BASE_URL")
    api_key: str | None = field(default=None, name="LOCAL_MODEL_API_KEY")


class HousekeepingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Crash safety and cleanup: generation leases, the reaper that settles expired ones, and the purge of expired
    bookkeeping (every `interval_seconds`)."""

    generation_lease_seconds: Annotated[float, Meta(gt=0, le=3600)] = field(
        default=90.0, name="GENERATION_LEASE_SECONDS"
    )
    reaper_interval_seconds: Annotated[float, Meta(gt=0, le=3600)] = field(default=10.0, name="REAPER_INTERVAL_SECONDS")
    interval_seconds: Annotated[float, Meta(gt=0, le=86400)] = field(default=60.0, name="HOUSEKEEPING_INTERVAL_SECONDS")
    reference_retention_days: Annotated[int, Meta(ge=1, le=3650)] = field(default=30, name="REFERENCE_RETENTION_DAYS")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every group; a group left out takes its defaults."""

    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    providers: ProviderSettings = field(default_factory=ProviderSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    local_model: LocalModelSettings = field(default_factory=LocalModelSettings)
    housekeeping: HousekeepingSettings = field(default_factory=HousekeepingSettings)

    def groups(self) -> tuple[msgspec.Struct, ...]:
        return msgspec.structs.astuple(self)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|\*")


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> Settings:
    """Read `.env` (if present) under the process environment, validate, and apply the production rules."""
    source: dict[str, str | None] = dict(dotenv_values(env_file)) if Path(env_file).is_file() else {}
    source.update(os.environ if environ is None else environ)
    variables = {name.upper(): value for name, value in source.items() if value is not None and value != ""}
    tree = {
        group.encode_name: {
            setting.encode_name: variables[setting.encode_name]
            for setting in msgspec.structs.fields(group.type)
            if setting.encode_name in variables
        }
        for group in msgspec.structs.fields(Settings)
    }
    try:
        settings = msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_the_variable(str(exc))) from None
    _check_accounts(settings.accounts)
    _check_instances(settings.providers)
    _check_transport(settings.http, settings.metrics)
    return msgspec.structs.replace(settings, security=_checked_secrets(settings.security, settings.runtime))


def _name_the_variable(message: str) -> str:
    """msgspec says `... - at `$.http.PORT``; the operator set `PORT`."""
    text, _, path = message.rpartition(" - at `$.")
    if not path:
        return f"invalid configuration: {message}"
    return f"invalid value for {path.rstrip('`').rpartition('.')[2]}: {text}"


def _check_accounts(accounts: AccountSettings) -> None:
    try:
        signup_credits = Credits.parse(accounts.signup_credits)
    except InvalidAmount:
        raise SettingsError("invalid value for SIGNUP_CREDITS: a decimal number of credits, e.g. 10 or 2.5") from None
    if signup_credits > MAX_BALANCE:
        raise SettingsError(f"invalid value for SIGNUP_CREDITS: at most {MAX_BALANCE} credits")


def _check_instances(providers: ProviderSettings) -> None:
    try:
        instances = providers.instance_map()
    except msgspec.DecodeError as error:  # ValidationError included
        raise SettingsError(
            f'invalid value for PROVIDER_INSTANCES: {error} (a JSON object such as {{"openai-b": {{"protocol": '
            '"openai", "base_url": "https://host/v1", "api_key": "..."}})'
        ) from None
    if taken := sorted(BUILT_IN_PROVIDERS & instances.keys()):
        raise SettingsError(f"invalid value for PROVIDER_INSTANCES: {taken[0]!r} is a built-in provider's name")


def _check_transport(http: HttpSettings, metrics: MetricsSettings) -> None:
    _check_networks("TRUSTED_PROXIES", http.trusted_proxy_list)
    _check_networks("METRICS_ALLOWED_NETWORKS", metrics.network_list)
    for origin in http.cors_origin_list:
        if not _ORIGIN.fullmatch(origin):
            raise SettingsError(
                f"invalid value for CORS_ALLOWED_ORIGINS: {origin!r} is not `*` or an origin like https://app.example"
            )


def _check_networks(variable: str, networks: list[str]) -> None:
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise SettingsError(f"invalid value for {variable}: {network!r} is not an IP address or CIDR") from None


def _checked_secrets(security: SecuritySettings, runtime: RuntimeSettings) -> SecuritySettings:
    """Production demands its secrets; development generates the missing ones once and keeps them."""
    if runtime.is_production and security.argon2_profile == "cheapest":
        raise SettingsError("ARGON2_PROFILE=cheapest is for tests only and refused in production")
    try:
        parse_master_keys(security.secret_keys or generate_master_key())
    except ValueError as error:
        raise SettingsError(f"invalid value for SECRET_KEYS: {error}") from None
    if runtime.is_production:
        secret = security.jwt_secret
        if not secret or len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(f"JWT_SECRET must be set to at least {MIN_JWT_SECRET_BYTES} bytes in production")
        if not security.secret_keys:
            raise SettingsError("SECRET_KEYS (the master key that encrypts API key secrets) is required in production")
        return security
    data_dir = Path(runtime.data_dir)
    return msgspec.structs.replace(
        security,
        jwt_secret=security.jwt_secret
        or _development_secret(data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48)),
        secret_keys=security.secret_keys or _development_secret(data_dir, "secret_keys", generate_master_key),
    )


def _development_secret(data_dir: Path, name: str, generate: Callable[[], str]) -> str:
    """In development secrets are generated once and kept, so tokens and stored keys survive restarts."""
    path = data_dir / name
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = generate()
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret
