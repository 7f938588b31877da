from application.ports.health import DatabaseProbe
from application.ports.housekeeping import Housekeeping, PurgeCutoffs
from domain.api_key import KeyStatus
from tests.support.fakes.state import FakeDatabase, Tables


class FakeHousekeeping(Housekeeping):
    """Purges as the SQL does: at most `limit` rows of each kind per call, each kind past its own cutoff."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def purge(self, cutoffs: PurgeCutoffs, limit: int) -> int:
        return self._db.autocommit(lambda tables: _purge(tables, cutoffs, limit))


def _purge(tables: Tables, cutoffs: PurgeCutoffs, limit: int) -> int:
    now = cutoffs.now
    living_families = {row.family_id for row in tables.refresh_tokens.values() if row.expires_at >= now}

    def key_gone(api_key: str) -> bool:
        row = tables.keys.get(api_key)
        return row is not None and (row.key.status is KeyStatus.REVOKED or row.key.expires_at < now)

    doomed = (
        (tables.nonces, [k for k, expires_at in tables.nonces.items() if expires_at < now]),
        (tables.throttle, [k for k in tables.throttle if k[1] < cutoffs.windows_before]),
        (
            tables.idempotency,
            [k for k, row in tables.idempotency.items() if row.created_at < cutoffs.idempotency_before],
        ),
        (
            tables.refresh_tokens,
            [
                k
                for k, row in tables.refresh_tokens.items()
                if row.expires_at < now and row.family_id not in living_families
            ],
        ),
        (
            tables.references,
            [
                k
                for k, r in tables.references.items()
                if r.created_at < cutoffs.references_before or key_gone(r.api_key)
            ],
        ),
    )
    purged = 0
    for rows, keys in doomed:
        for key in keys[:limit]:
            del rows[key]
            purged += 1
    return purged


class FakeDatabaseProbe(DatabaseProbe):
    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self.timeouts: list[float] = []

    async def ping(self, timeout_seconds: float) -> bool:
        self.timeouts.append(timeout_seconds)
        return self.up
