"""Every user's generations as admins read them, on fakes: searched by user, model, status, API key and a
`[from, to)` window, and one inspected with its owner, kind and error code."""

from datetime import timedelta
from uuid import UUID

import pytest

from application.generations.queries import InspectGeneration, SearchGenerations
from application.ports.generations import GenerationFilter
from application.ports.persistence import PageRequest
from domain.errors import InvalidInput, UpstreamError
from domain.generation import GenerationKind, GenerationNotFound, GenerationStatus
from tests.support.fakes import Fakes


async def _ids(fakes: Fakes, where: GenerationFilter, page: PageRequest | None = None) -> list[UUID]:
    return [g.id for g in (await SearchGenerations(fakes.records)(where, page or PageRequest())).items]


async def test_a_search_narrows_by_every_criterion_given_newest_first() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    await fakes.model("m2")
    ada, bob = await fakes.funded_client("ada"), await fakes.funded_client("bob")
    key = await fakes.key(ada)
    a1 = await fakes.generation(ada, "m1")
    a2 = await fakes.generation(ada, "m2", api_key=key.api_key)
    a3 = await fakes.generation(ada, "m1", fails=True)
    b1 = await fakes.generation(bob, "m1")
    assert await _ids(fakes, GenerationFilter()) == [b1, a3, a2, a1]
    assert await _ids(fakes, GenerationFilter(user_id=ada.id)) == [a3, a2, a1]
    assert await _ids(fakes, GenerationFilter(model="m1")) == [b1, a3, a1]
    assert await _ids(fakes, GenerationFilter(status=GenerationStatus.FAILED)) == [a3]
    assert await _ids(fakes, GenerationFilter(api_key=key.api_key)) == [a2]
    assert await _ids(fakes, GenerationFilter(user_id=bob.id, model="m2")) == []
    assert await _ids(fakes, GenerationFilter(user_id=ada.id, status=GenerationStatus.COMPLETED, model="m1")) == [a1]


async def test_a_search_window_holds_its_start_and_not_its_end() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    ada = await fakes.funded_client("ada")
    first_at = fakes.clock.now()
    first = await fakes.generation(ada, "m1")
    second = await fakes.generation(ada, "m1")
    third = await fakes.generation(ada, "m1")
    second_at = first_at + timedelta(seconds=1)
    assert await _ids(fakes, GenerationFilter(since=second_at)) == [third, second]
    assert await _ids(fakes, GenerationFilter(until=second_at)) == [first]
    assert await _ids(fakes, GenerationFilter(since=second_at, until=second_at + timedelta(seconds=1))) == [second]


async def test_a_search_pages_through_its_matches() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    ada = await fakes.funded_client("ada")
    made = [await fakes.generation(ada, "m1") for _ in range(3)]
    search = SearchGenerations(fakes.records)
    first = await search(GenerationFilter(user_id=ada.id), PageRequest(limit=2))
    rest = await search(GenerationFilter(user_id=ada.id), PageRequest(limit=2, cursor=first.next_cursor))
    assert [g.id for g in [*first.items, *rest.items]] == made[::-1]
    assert rest.next_cursor is None


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1)])
async def test_a_search_window_must_start_before_it_ends(length: timedelta) -> None:
    fakes = Fakes()
    since = fakes.clock.now()
    with pytest.raises(InvalidInput) as refused:
        await SearchGenerations(fakes.records)(GenerationFilter(since=since, until=since + length), PageRequest())
    assert refused.value.field == "from"


async def test_an_inspected_generation_shows_its_owner_kind_and_error_code() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    ada = await fakes.funded_client("ada")
    key = await fakes.key(ada)
    completed = await fakes.generation(ada, "m1", api_key=key.api_key)
    failed = await fakes.generation(ada, "m1", fails=True)
    inspect = InspectGeneration(fakes.records)
    view = await inspect(completed)
    assert (view.id, view.user_id, view.kind, view.status, view.api_key, view.error_code) == (
        completed,
        ada.id,
        GenerationKind.GENERATION,
        GenerationStatus.COMPLETED,
        key.api_key,
        None,
    )
    broken = await inspect(failed)
    assert (broken.status, broken.error_code) == (GenerationStatus.FAILED, UpstreamError.code)


async def test_inspecting_a_generation_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(GenerationNotFound):
        await InspectGeneration(Fakes().records)(UUID(int=999))
