"""`creditgate serve --workers 2`: one scrape of either worker reports the sum of both (prometheus_client's
multiprocess mode), and a killed worker's counts stay while its live gauges go."""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cluster import CLUSTER_ENVIRONMENT, CREDITGATE, Instance, free_port, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

PROBED = "/health/live"
BATCH = 20
MAX_BATCHES = 25
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An operator-set directory holding a previous run's file, which `serve` must wipe before its workers start."""
    directory = tmp_path_factory.mktemp("multiproc")
    stale = MmapedDict(str(directory / "counter_1.db"))
    labels = ["method", "path", "status_code", "app_name"]
    key = mmap_key("creditgate_requests", "creditgate_requests_total", labels, ["GET", PROBED, "200", "creditgate"], "")
    stale.write_value(key, 1000.0, 0.0)
    stale.close()
    return directory


@pytest.fixture(scope="module")
def two_workers(database_url: str, metrics_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    workdir = tmp_path_factory.mktemp("serve")
    inherited = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL", "DATABASE_URL"))}
    environment = (
        inherited
        | CLUSTER_ENVIRONMENT
        | {
            "DATABASE_URL": database_url,
            "DATA_DIR": str(workdir / "data"),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
    )
    port = free_port()
    log_path = workdir / "serve.log"
    process = subprocess.Popen(
        [CREDITGATE, "serve", "--port", str(port), "--workers", "2", "--no-migrate"],
        env=environment,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
    )
    instance = Instance(port, process, log_path)
    try:
        wait_ready(instance)
        yield instance
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _probed_count(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "creditgate_requests_total" and sample.labels.get("path") == PROBED
    )


def _per_worker(metrics_dir: Path, scratch: Path) -> dict[int, float]:
    """What each worker counted, read from its own counter file alone."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = scratch / path.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts[int(path.stem.split("_")[1])] = _probed_count(generate_latest(registry).decode())
    return counts


def _counted(metrics_dir: Path, scratch: Path, sent: float) -> dict[int, float]:
    """Once the workers have counted every request sent: the middleware counts a request after its response."""
    deadline = time.monotonic() + WAIT_SECONDS
    per_worker = _per_worker(metrics_dir, scratch)
    while sum(per_worker.values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
        per_worker = _per_worker(metrics_dir, scratch)
    return per_worker


async def _probe(url: str, count: int) -> None:
    """Each request on a connection of its own, all at once, so that both workers accept some."""
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        responses = await asyncio.gather(*(http.get(f"{url}{PROBED}") for _ in range(count)))
    assert all(response.status_code == 200 for response in responses)


def _scrapes(url: str, count: int) -> list[float]:
    totals = []
    for _ in range(count):
        with httpx.Client(timeout=10) as http:  # a new connection each: any worker may answer
            response = http.get(f"{url}/metrics")
        assert response.status_code == 200
        totals.append(_probed_count(response.text))
    return totals


async def test_one_scrape_reports_the_sum_of_both_workers(
    two_workers: Instance, metrics_dir: Path, tmp_path: Path
) -> None:
    assert not (metrics_dir / "counter_1.db").exists()  # wiped at start
    sent = 0
    for _ in range(MAX_BATCHES):
        await _probe(two_workers.url, BATCH)
        sent += BATCH
        per_worker = _counted(metrics_dir, tmp_path, sent)
        if sum(1 for count in per_worker.values() if count) == 2:
            break
    assert sorted(count > 0 for count in per_worker.values()) == [True, True], per_worker
    assert sum(per_worker.values()) == sent
    assert _scrapes(two_workers.url, 8) == [sent] * 8


def test_a_killed_worker_keeps_its_counts_and_loses_its_live_gauges(
    two_workers: Instance, metrics_dir: Path, tmp_path: Path
) -> None:
    before = _scrapes(two_workers.url, 1)[0]
    workers = set(_per_worker(metrics_dir, tmp_path))
    victim = min(workers)
    assert (metrics_dir / f"gauge_livesum_{victim}.db").exists()  # open_streams, requests_in_progress
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        replacements = set(_per_worker(metrics_dir, tmp_path)) - workers
        if replacements and not (metrics_dir / f"gauge_livesum_{victim}.db").exists():
            break
        time.sleep(0.2)
    assert replacements, "uvicorn started no replacement worker"
    assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists()
    assert (metrics_dir / f"counter_{victim}.db").exists()
    assert _scrapes(two_workers.url, 4) == [before] * 4
