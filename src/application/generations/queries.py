from uuid import UUID

from application.generations.views import GenerationPage, GenerationView
from application.ports.generations import GenerationRecords
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
