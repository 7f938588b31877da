"""Two `serve` processes sharing one Redis share the per-user limit (SPEC §9, RELIABILITY Z5)."""

import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.api import PASSWORD
from tests.support.cluster import running_cluster

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_two_instances_share_one_users_requests_per_minute(database_url: str, tmp_path: Path, clean_db: object) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"creditgate-test-{uuid.uuid4().hex}:"
    environment = {"REDIS_URL": REDIS_URL, "RATE_LIMIT_REDIS_PREFIX": prefix, "RATE_LIMIT_USER_RPM": "6"}
    try:
        with running_cluster(2, database_url, tmp_path, **environment) as cluster:
            one, two = (httpx.Client(base_url=url, timeout=5) for url in cluster.urls)
            credentials = {"username": "shared", "password": PASSWORD}
            assert one.post("/api/v1/auth/register", json=credentials).status_code == 201
            token = two.post("/api/v1/auth/login", json=credentials).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            if time.time() % 60 > 50:  # keep the burst inside one window
                time.sleep(61 - time.time() % 60)
            statuses = [(one if i % 2 else two).get("/api/v1/me", headers=headers).status_code for i in range(8)]
            refused = one.get("/api/v1/me", headers=headers)
            one.close()
            two.close()
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
    assert statuses == [200] * 6 + [429, 429]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
