from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, running_cluster


@pytest.fixture
def cluster(database_url: str, tmp_path: Path, clean_db: object) -> Iterator[Cluster]:
    with running_cluster(3, database_url, tmp_path) as running:
        yield running
