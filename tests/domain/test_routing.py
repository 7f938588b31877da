import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.routing import CLOSED, BreakerPolicy, BreakerState, Deployment, Failure, attempt_order

NOW = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = BreakerPolicy(failures=3, cooldown=timedelta(seconds=30), max_retry_after=timedelta(seconds=60))

deployments = st.lists(
    st.builds(
        Deployment,
        provider=st.sampled_from(["a", "b", "c"]),
        upstream_model=st.text("xyz", min_size=1, max_size=3),
        priority=st.integers(0, 3),
        weight=st.integers(1, 1000),
    ),
    max_size=8,
    unique_by=lambda d: d.key,
)


@given(deployments, st.randoms(use_true_random=False), st.sets(st.integers(0, 7)))
def test_the_order_holds_each_admitted_deployment_once_by_priority(
    listed: list[Deployment], rng: random.Random, refused: set[int]
) -> None:
    skipped = {listed[i].key for i in refused if i < len(listed)}
    order = attempt_order(listed, lambda d: d.key not in skipped, rng.random)
    assert sorted(d.key for d in order) == sorted(d.key for d in listed if d.key not in skipped)
    assert [d.priority for d in order] == sorted(d.priority for d in order)


def test_within_a_priority_the_first_is_drawn_by_weight_and_a_lower_priority_always_comes_first() -> None:
    heavy, light, backup = Deployment("a", "m", 0, 3), Deployment("b", "m", 0, 1), Deployment("c", "m", 1, 100)
    rng = random.Random(7)
    firsts = Counter(attempt_order([backup, light, heavy], lambda d: True, rng.random)[0].key for _ in range(4000))
    assert set(firsts) == {"a/m", "b/m"}
    assert 0.72 <= firsts["a/m"] / 4000 <= 0.78  # 3:1, within ~5 standard deviations


@given(st.integers(0, 10))
def test_a_breaker_opens_after_the_policy_s_consecutive_failures_only(failures: int) -> None:
    breaker = CLOSED
    for _ in range(failures):
        breaker = breaker.failed(NOW, POLICY)
    assert breaker.admits(NOW, POLICY) is (failures < POLICY.failures)
    assert breaker.succeeded().admits(NOW, POLICY)


def test_an_open_breaker_lets_one_probe_through_after_the_cool_down() -> None:
    breaker = CLOSED.failed(NOW, POLICY).failed(NOW, POLICY).failed(NOW, POLICY)
    assert breaker.state(NOW + timedelta(seconds=29)) is BreakerState.OPEN
    later = NOW + POLICY.cooldown
    assert breaker.state(later) is BreakerState.HALF_OPEN
    assert breaker.admits(later, POLICY)
    probing = breaker.admitted(later)
    assert not probing.admits(later, POLICY), "one probe at a time"
    assert probing.admits(later + POLICY.cooldown, POLICY), "a probe that never reported frees the door"
    assert probing.succeeded().state(later) is BreakerState.CLOSED
    reopened = probing.failed(later, POLICY)
    assert reopened.state(later) is BreakerState.OPEN
    assert reopened.open_until == later + POLICY.cooldown


@given(st.integers(0, 3600))
def test_a_retry_after_cools_a_deployment_down_at_once_up_to_the_cap(seconds: int) -> None:
    breaker = CLOSED.failed(NOW, POLICY, timedelta(seconds=seconds))
    cooldown = min(seconds, 60)
    assert breaker.admits(NOW + timedelta(seconds=cooldown), POLICY)
    assert breaker.admits(NOW + timedelta(seconds=cooldown) - timedelta(microseconds=1), POLICY) is (cooldown == 0)


def test_only_failures_another_deployment_may_not_share_fail_over() -> None:
    assert {f for f in Failure if f.fails_over} == {
        Failure.CONNECT,
        Failure.TIMEOUT,
        Failure.RATE_LIMITED,
        Failure.SERVER_ERROR,
    }


steps = st.lists(st.sampled_from(["admit", "fail", "succeed", "wait"]), max_size=40)


@given(steps)
def test_a_breaker_lets_at_most_one_probe_through_per_cool_down_and_a_success_always_closes_it(
    script: list[str],
) -> None:
    breaker, now, in_flight = CLOSED, NOW, 0
    for step in script:
        match step:
            case "admit" if breaker.admits(now, POLICY):
                half_open = breaker.state(now) is BreakerState.HALF_OPEN
                breaker = breaker.admitted(now)
                in_flight = in_flight + 1 if half_open else 0
                assert in_flight <= 1, "a second probe while the first one is out"
            case "fail":
                breaker, in_flight = breaker.failed(now, POLICY), 0
            case "succeed":
                breaker, in_flight = breaker.succeeded(), 0
                assert breaker.state(now) is BreakerState.CLOSED
            case "wait":
                now, in_flight = now + POLICY.cooldown, 0  # a probe unheard for a cool-down frees the door
        assert (breaker.state(now) is BreakerState.CLOSED) is (breaker.open_until is None)
