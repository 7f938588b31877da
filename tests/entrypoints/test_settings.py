import re
from pathlib import Path

import msgspec
import pytest

from adapters.security.aes_gcm_cipher import generate_master_key
from entrypoints.settings import Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"

STRONG_SECRET = "s" * 32


def test_defaults_follow_the_spec(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert settings.http.port == 3000
    assert settings.runtime.environment == "development"
    assert settings.database.url is None
    assert settings.providers.simulator_token_delay_ms == 15
    assert settings.rate_limits.user_rpm == 600
    assert settings.accounts.login_failure_limit == 10


def test_numbers_and_flags_are_converted_from_text(tmp_path: Path) -> None:
    settings = load_settings({"PORT": "8080", "DB_POOL_SIZE": "3", "JWT_SECRET": "x"}, env_file=tmp_path / "none")
    assert settings.http.port == 8080
    assert settings.database.pool_size == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("DB_POOL_SIZE", "0"),
        ("CREDITGATE_ENV", "prod"),
        ("LOG_LEVEL", "loud"),
        ("SIGNUP_CREDITS", "1e3"),
        ("SIGNUP_CREDITS", "1000000000000.000001"),
        ("DB_PGBOUNCER", "maybe"),
        ("RATE_LIMIT_REDIS_TIMEOUT_MS", "5"),
        ("UPSTREAM_READ_TIMEOUT_SECONDS", "0"),
        ("LOCAL_MODEL_THREADS", "many"),
        ("REFERENCE_RETENTION_DAYS", "0"),
    ],
)
def test_a_bad_value_is_reported_by_its_variable_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value, "JWT_SECRET": "x"}, env_file=tmp_path / "none")


@pytest.mark.parametrize("secret", [None, "", "short", "x" * 31])
def test_production_refuses_a_missing_or_weak_jwt_secret(tmp_path: Path, secret: str | None) -> None:
    environ = {"CREDITGATE_ENV": "production"} | ({"JWT_SECRET": secret} if secret is not None else {})
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings(environ, env_file=tmp_path / "none")


def test_production_accepts_a_32_byte_secret(tmp_path: Path) -> None:
    environ = {"CREDITGATE_ENV": "production", "JWT_SECRET": STRONG_SECRET, "SECRET_KEYS": generate_master_key()}
    assert load_settings(environ, env_file=tmp_path / "x").runtime.is_production


def test_development_generates_a_jwt_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    second = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert first.security.jwt_secret
    assert len(first.security.jwt_secret) >= 32
    assert first.security.jwt_secret == second.security.jwt_secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_dot_env_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nSIMULATOR_TOKEN_DELAY_MS=3\nJWT_SECRET=from-file\n")
    settings = load_settings({"PORT": "5000"}, env_file=env_file)
    assert settings.http.port == 5000
    assert settings.providers.simulator_token_delay_ms == 3
    assert settings.security.jwt_secret == "from-file"


def test_production_requires_the_master_key_for_api_key_secrets(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEYS"):
        load_settings({"CREDITGATE_ENV": "production", "JWT_SECRET": STRONG_SECRET}, env_file=tmp_path / "x")


def test_a_malformed_master_key_is_named_but_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEYS") as raised:
        load_settings({"SECRET_KEYS": "not-a-key-material-xyz", "JWT_SECRET": "x"}, env_file=tmp_path / "x")
    assert "not-a-key-material-xyz" not in str(raised.value)


def test_development_generates_the_master_key_once(tmp_path: Path) -> None:
    first = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    second = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert first.security.secret_keys
    assert first.security.secret_keys == second.security.secret_keys


def test_no_proxy_is_trusted_and_no_cors_origin_allowed_by_default(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert settings.http.trusted_proxy_list == []
    assert settings.http.cors_origin_list == []


def test_trusted_proxies_and_cors_origins_are_comma_lists(tmp_path: Path) -> None:
    environ = {
        "TRUSTED_PROXIES": " 10.0.0.1, 192.168.0.0/16 ,::1,",
        "CORS_ALLOWED_ORIGINS": "https://app.example, http://localhost:5173",
        "JWT_SECRET": "x",
    }
    settings = load_settings(environ, env_file=tmp_path / "none")
    assert settings.http.trusted_proxy_list == ["10.0.0.1", "192.168.0.0/16", "::1"]
    assert settings.http.cors_origin_list == ["https://app.example", "http://localhost:5173"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRUSTED_PROXIES", "*"),
        ("TRUSTED_PROXIES", "proxy.internal"),
        ("TRUSTED_PROXIES", "10.0.0.1,10.0.0.300"),
        ("CORS_ALLOWED_ORIGINS", "app.example"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example/path"),
        ("CORS_ALLOWED_ORIGINS", "https://*.example"),
    ],
)
def test_a_bad_proxy_or_origin_is_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value, "JWT_SECRET": "x"}, env_file=tmp_path / "none")


def test_metrics_are_for_loopback_unless_configured(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert settings.metrics.token is None
    assert settings.metrics.network_list == ["127.0.0.1/32", "::1/128"]
    configured = load_settings(
        {"DATA_DIR": str(tmp_path), "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.1.7", "METRICS_TOKEN": "t" * 32},
        env_file=tmp_path / "none",
    )
    assert configured.metrics.network_list == ["10.0.0.0/8", "192.168.1.7"]
    assert configured.metrics.token == "t" * 32


@pytest.mark.parametrize(
    ("name", "value"), [("METRICS_ALLOWED_NETWORKS", "localhost"), ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/33")]
)
def test_a_bad_metrics_setting_is_refused(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"DATA_DIR": str(tmp_path), name: value}, env_file=tmp_path / "none")


def test_every_variable_read_is_in_the_readme_and_the_readme_lists_no_other() -> None:
    variables = {
        setting.encode_name
        for group in msgspec.structs.fields(Settings)
        for setting in msgspec.structs.fields(group.type)
    }
    configuration = README.read_text().split("## Configuration", 1)[1].split("\n### ", 1)[0]
    documented = {
        name
        for row in configuration.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z0-9_]+)`", row.split("|")[1])
    }
    assert variables == documented


def test_a_variable_lands_in_its_group(tmp_path: Path) -> None:
    environ = {
        "DATA_DIR": str(tmp_path),
        "DB_TIMEOUT_SECONDS": "2.5",
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "7",
        "RATE_LIMIT_REDIS_PREFIX": "p:",
        "UPSTREAM_READ_TIMEOUT_SECONDS": "9",
        "LOCAL_MODEL": "off",
        "HOUSEKEEPING_INTERVAL_SECONDS": "30",
    }
    settings = load_settings(environ, env_file=tmp_path / "none")
    assert settings.database.timeout_seconds == 2.5
    assert settings.accounts.registrations_per_hour == 7
    assert settings.rate_limits.redis_prefix == "p:"
    assert settings.providers.read_timeout_seconds == 9
    assert settings.local_model.mode == "off"
    assert settings.housekeeping.interval_seconds == 30


def test_provider_instances_are_named_endpoints_of_a_wire_protocol(tmp_path: Path) -> None:
    instances = '{"openai-b": {"protocol": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-b"}}'
    settings = load_settings({"DATA_DIR": str(tmp_path), "PROVIDER_INSTANCES": instances}, env_file=tmp_path / "none")
    (name, instance), *_ = settings.providers.instance_map().items()
    assert (name, instance.protocol, instance.base_url, instance.api_key) == (
        "openai-b",
        "openai",
        "http://127.0.0.1:9/v1",
        "sk-b",
    )
    assert load_settings({"DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none").providers.instance_map() == {}


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '["openai-b"]',
        '{"openai-b": {"protocol": "grpc"}}',
        '{"Open B": {"protocol": "openai"}}',
        '{"openai-b": {"protocol": "openai", "url": "http://x"}}',
        '{"gemini": {"protocol": "gemini", "api_key": "k"}}',
    ],
)
def test_a_bad_provider_instance_is_refused_by_name(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="PROVIDER_INSTANCES"):
        load_settings({"DATA_DIR": str(tmp_path), "PROVIDER_INSTANCES": value}, env_file=tmp_path / "none")
