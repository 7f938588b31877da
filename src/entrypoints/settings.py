"""Configuration: environment variables (and `.env`) -> one validated, frozen Settings value."""

import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from dotenv import dotenv_values

from adapters.security.aes_gcm_cipher import generate_master_key, parse_master_keys
from domain.credits import Credits, InvalidAmount
from domain.wallet import MAX_BALANCE

MIN_JWT_SECRET_BYTES = 32

Environment = Literal["development", "production"]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class SettingsError(Exception):
    """Raised when the configuration cannot be used; its message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    creditgate_env: Environment = "development"
    database_url: str | None = None
    jwt_secret: str | None = None
    port: Port = 3000
    data_dir: str = ".data"
    db_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    db_max_overflow: Annotated[int, msgspec.Meta(ge=0, le=200)] = 10
    db_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    db_pgbouncer: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    simulator_token_delay_ms: NonNegative = 15
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    gemini_api_key: str | None = None
    gemini_base_url: str | None = None
    upstream_connect_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    upstream_read_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=600)] = 60.0
    generation_lease_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 90.0
    reaper_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    housekeeping_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 60.0
    reference_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    redis_url: str | None = None
    rate_limit_user_rpm: NonNegative = 600
    rate_limit_key_rpm: NonNegative = 600
    rate_limit_user_tpm: NonNegative = 0
    rate_limit_key_tpm: NonNegative = 0
    rate_limit_redis_prefix: str = "creditgate:ratelimit:"
    rate_limit_redis_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=5000)] = 200
    rate_limit_registrations_per_hour: NonNegative = 30
    login_failure_limit: NonNegative = 10
    reference_storage_bytes_per_user: NonNegative = 16 * 1024 * 1024
    signup_credits: str = "0"
    argon2_profile: Literal["rfc9106_low_memory", "cheapest"] = "rfc9106_low_memory"
    secret_keys: str | None = None
    local_model: Literal["on", "off"] = "on"  # on: `serve` runs the local model when the `local` extra is installed
    local_model_threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    local_model_context: Annotated[int, msgspec.Meta(ge=256, le=131072)] = 4096
    local_model_base_url: str | None = None  # set by `serve` for its workers (or point it at any llama-server)
    local_model_api_key: str | None = None
    trusted_proxies: str = ""
    cors_allowed_origins: str = ""
    metrics_token: str | None = None
    metrics_allowed_networks: str = "127.0.0.1/32,::1/128"

    @property
    def is_production(self) -> bool:
        return self.creditgate_env == "production"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _comma_list(self.trusted_proxies)

    @property
    def cors_origin_list(self) -> list[str]:
        return _comma_list(self.cors_allowed_origins)

    @property
    def metrics_network_list(self) -> list[str]:
        return _comma_list(self.metrics_allowed_networks)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is not set and no embedded database was started")
        return self.database_url

    def require_secret_keys(self) -> str:
        if not self.secret_keys:
            raise SettingsError("SECRET_KEYS is not set")
        return self.secret_keys

    def require_jwt_secret(self) -> str:
        if not self.jwt_secret:
            raise SettingsError("JWT_SECRET is not set")
        return self.jwt_secret


_FIELDS = frozenset(Settings.__struct_fields__)
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|\*")


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> Settings:
    """Read `.env` (if present) under the process environment, validate, and apply the production rules."""
    source: dict[str, str | None] = dict(dotenv_values(env_file)) if Path(env_file).is_file() else {}
    source.update(os.environ if environ is None else environ)
    values = {
        name.lower(): value
        for name, value in source.items()
        if name.lower() in _FIELDS and value is not None and value != ""
    }
    try:
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_the_variable(str(exc))) from None
    return _check_secrets(settings)


def _name_the_variable(message: str) -> str:
    """msgspec says `... - at `$.port``; the operator set `PORT`."""
    text, _, path = message.rpartition(" - at `$.")
    if not path:
        return f"invalid configuration: {message}"
    return f"invalid value for {path.rstrip('`').upper()}: {text}"


def _check_secrets(settings: Settings) -> Settings:
    secret = settings.jwt_secret
    try:
        signup_credits = Credits.parse(settings.signup_credits)
    except InvalidAmount:
        raise SettingsError("invalid value for SIGNUP_CREDITS: a decimal number of credits, e.g. 10 or 2.5") from None
    if signup_credits > MAX_BALANCE:
        raise SettingsError(f"invalid value for SIGNUP_CREDITS: at most {MAX_BALANCE} credits")
    _check_transport(settings)
    if settings.is_production and settings.argon2_profile == "cheapest":
        raise SettingsError("ARGON2_PROFILE=cheapest is for tests only and refused in production")
    try:
        parse_master_keys(settings.secret_keys or generate_master_key())
    except ValueError as error:
        raise SettingsError(f"invalid value for SECRET_KEYS: {error}") from None
    if settings.is_production:
        if not secret or len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(f"JWT_SECRET must be set to at least {MIN_JWT_SECRET_BYTES} bytes in production")
        if not settings.secret_keys:
            raise SettingsError("SECRET_KEYS (the master key that encrypts API key secrets) is required in production")
        return settings
    data_dir = Path(settings.data_dir)
    return msgspec.structs.replace(
        settings,
        jwt_secret=secret or _development_secret(data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48)),
        secret_keys=settings.secret_keys or _development_secret(data_dir, "secret_keys", generate_master_key),
    )


def _check_transport(settings: Settings) -> None:
    _check_networks("TRUSTED_PROXIES", settings.trusted_proxy_list)
    _check_networks("METRICS_ALLOWED_NETWORKS", settings.metrics_network_list)
    for origin in settings.cors_origin_list:
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
