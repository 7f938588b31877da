from uuid import UUID

from application.generations.views import GenerationPage, GenerationRecordPage, GenerationRecordView, GenerationView
from application.instants import require_window
from application.ports.generations import GenerationFilter, GenerationRecords
from application.ports.persistence import PageRequest
from application.ports.security import IdentityProvider
from domain.generation import GenerationNotFound


class ListGenerations:
    """The caller's generations, newest first."""

    def __init__(self, identity: IdentityProvider, records: GenerationRecords) -> None:
        self._identity = identity
        self._records = records

    async def __call__(self, page: PageRequest) -> GenerationPage:
        principal = await self._identity.current()
        return GenerationPage.of(await self._records.of_user(principal.user_id, page))


class GetGeneration:
    """One generation: its owner and admins see it; anyone else gets 404, as if it did not exist."""

    def __init__(self, identity: IdentityProvider, records: GenerationRecords) -> None:
        self._identity = identity
        self._records = records

    async def __call__(self, generation_id: UUID) -> GenerationView:
        principal = await self._identity.current()
        generation = await self._records.get(generation_id)
        if generation is None or (generation.user_id != principal.user_id and not principal.is_admin):
            raise GenerationNotFound
        return GenerationView.of(generation)


class SearchGenerations:
    """Every user's generations, newest first, narrowed by user, model, status, API key and a `[from, to)` window
    of their start."""

    def __init__(self, records: GenerationRecords) -> None:
        self._records = records

    async def __call__(self, where: GenerationFilter, page: PageRequest) -> GenerationRecordPage:
        require_window(where.since, where.until)
        return GenerationRecordPage.of(await self._records.search(where, page))


class InspectGeneration:
    """One generation of any user, with its owner, kind and error code."""

    def __init__(self, records: GenerationRecords) -> None:
        self._records = records

    async def __call__(self, generation_id: UUID) -> GenerationRecordView:
        generation = await self._records.get(generation_id)
        if generation is None:
            raise GenerationNotFound
        return GenerationRecordView.of_record(generation)
