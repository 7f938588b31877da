"""The scenarios of SPEC §10, and what one target's run of a scenario measured."""

from dataclasses import dataclass, field

from bench.load import LoadResult


@dataclass(frozen=True)
class Scenario:
    name: str
    upstream_model: str  # the upstream's behaviour, see bench/upstream.py
    stream: bool
    concurrency: int
    users: int = 16  # creditgate users the load is spread over (the load's connections take turns)
    peers: bool = True  # also measured through LiteLLM (not a wallet's ceiling: it has no wallet)


STREAM_64 = Scenario("stream 50 chunks x 5 ms, c64", "d0-n50-i5", stream=True, concurrency=64)
STREAM_256 = Scenario("stream 50 chunks x 5 ms, c256", "d0-n50-i5", stream=True, concurrency=256)
ONE_CHUNK_16 = Scenario("non-stream, one-chunk upstream, c16", "d0-n1-i0", stream=False, concurrency=16)
# creditgate streams from its upstream, so a non-stream answer of 50 tokens is 50 chunks to read (1 ms apart).
TOKENS_50 = Scenario("non-stream, 50-token answer, c16", "d0-n50-i1", stream=False, concurrency=16)
ONE_CHUNK_1 = Scenario("non-stream, one-chunk upstream, c1", "d0-n1-i0", stream=False, concurrency=1)
ONE_CHUNK_256 = Scenario("non-stream, one-chunk upstream, c256", "d0-n1-i0", stream=False, concurrency=256)
ONE_WALLET = Scenario(
    "non-stream, one-chunk upstream, c16, one user", "d0-n1-i0", stream=False, concurrency=16, users=1, peers=False
)
SCENARIOS = (ONE_CHUNK_1, ONE_CHUNK_16, ONE_WALLET, ONE_CHUNK_256, TOKENS_50, STREAM_64, STREAM_256)
SOAK = Scenario("soak: stream 50 chunks x 5 ms, c256", "d0-n50-i5", stream=True, concurrency=256, peers=False)


@dataclass
class Side:
    """One target's run of a scenario: the load generator's view and the target's processes sampled meanwhile."""

    load: LoadResult
    cpu_s: float
    wall_s: float
    machine_percent: float
    rss_before_kib: int
    rss_peak_kib: int
    rss_series: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / self.wall_s

    def cpu_per_chunk_us(self) -> float | None:
        """CPU per relayed chunk: what contention on the machine changes least."""
        chunks_per_s = self.load.chunks / self.load.duration_s
        return 1e6 * self.cpu_s / self.wall_s / chunks_per_s if chunks_per_s else None

    def cpu_per_generation_ms(self) -> float | None:
        return 1e3 * self.cpu_s / self.wall_s / self.load.completed_per_s if self.load.completed_per_s else None

    def cpu_cost(self, stream: bool) -> float | None:
        return self.cpu_per_chunk_us() if stream else self.cpu_per_generation_ms()


@dataclass
class Measured:
    scenario: Scenario
    direct: LoadResult
    sides: dict[str, Side]  # by target name, creditgate first
