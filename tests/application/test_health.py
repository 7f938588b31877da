from application.health.check_readiness import READINESS_TIMEOUT_SECONDS, CheckReadiness
from tests.support.fakes.housekeeping import FakeDatabaseProbe


async def test_ready_while_the_database_answers_within_its_timeout() -> None:
    probe = FakeDatabaseProbe()
    assert (await CheckReadiness(probe)()).ready is True
    probe.up = False
    readiness = await CheckReadiness(probe)()
    assert (readiness.ready, readiness.database) == (False, False)
    assert probe.timeouts == [READINESS_TIMEOUT_SECONDS] * 2
