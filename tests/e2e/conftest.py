from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.fake_upstream import FakeUpstream, serve_fake_upstream


@pytest.fixture(scope="module")
async def cluster_upstream() -> AsyncIterator[FakeUpstream]:
    """The `openai` provider of the module's cluster: each test scripts the models it creates."""
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def shared_cluster(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, cluster_upstream: FakeUpstream
) -> Iterator[Cluster]:
    environment = {"OPENAI_BASE_URL": f"{cluster_upstream.base_url}/v1", "OPENAI_API_KEY": "sk-cluster"}
    with running_cluster(3, database_url, tmp_path_factory.mktemp("cluster"), **environment) as running:
        yield running


@pytest.fixture
def cluster(shared_cluster: Cluster, clean_db: object) -> Cluster:
    """The module's three instances over a clean database: the caches of each forget what the cleaning removed,
    and an instance the previous test killed has been replaced (starting three per test cost 10-30 s)."""
    shared_cluster.replace_stopped()
    return shared_cluster
