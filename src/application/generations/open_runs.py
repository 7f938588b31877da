import asyncio

from application.generations.run import GenerationRun


class LiveRuns:
    """Every run of this process not closed yet. At shutdown, once the server has stopped waiting for its
    streams, the runs still open are settled (`cancelled`, for what they relayed) before the pools close."""

    def __init__(self) -> None:
        self._runs: set[GenerationRun] = set()

    def add(self, run: GenerationRun) -> None:
        self._runs.add(run)

    def discard(self, run: GenerationRun) -> None:
        self._runs.discard(run)

    def __len__(self) -> int:
        """The streams this instance holds open now."""
        return len(self._runs)

    async def close_all(self) -> None:
        await asyncio.gather(*(run.aclose() for run in list(self._runs)))


class OpenRuns:
    """The runs a request started. When the request ends — streamed to the end, client gone before the first
    byte, or cancelled — each is closed, so every generation is settled even if its stream was never read."""

    def __init__(self, live: LiveRuns) -> None:
        self._live = live
        self._runs: list[GenerationRun] = []

    def add(self, run: GenerationRun) -> GenerationRun:
        self._runs.append(run)
        self._live.add(run)
        return run

    async def close_all(self) -> None:
        for run in self._runs:
            await run.aclose()  # a settlement deferred again is logged; the reaper settles it
            self._live.discard(run)
