from application.generations.run import GenerationRun


class OpenRuns:
    """The runs a request started. When the request ends — streamed to the end, client gone before the first
    byte, or cancelled — each is closed, so every generation is settled even if its stream was never read."""

    def __init__(self) -> None:
        self._runs: list[GenerationRun] = []

    def add(self, run: GenerationRun) -> GenerationRun:
        self._runs.append(run)
        return run

    async def close_all(self) -> None:
        for run in self._runs:
            await run.aclose()  # a settlement deferred again is logged; the reaper settles it
