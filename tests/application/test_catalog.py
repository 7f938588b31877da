"""The model catalog on fakes: what clients see, what admins manage."""

import pytest

from application.catalog.use_cases import (
    AdminListModels,
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ListOpenAIModels,
    ModelPatch,
    NewModel,
    UpdateModel,
)
from application.catalog.views import PricingInput
from application.ports.persistence import PageRequest
from domain.catalog import ModelExists, ModelNotFound
from tests.support.fakes import Fakes

PRICE = PricingInput(unit_tokens=100, input_credits="20", output_credits="40")


async def test_clients_see_the_enabled_models_in_id_order_and_admins_see_all() -> None:
    fakes = Fakes()
    for model_id, enabled in (("b", True), ("a", True), ("off", False)):
        await fakes.model(model_id, enabled=enabled)
    first = await ListModels(fakes.catalog)(PageRequest(limit=1))
    rest = await ListModels(fakes.catalog)(PageRequest(limit=1, cursor=first.next_cursor))
    assert ([m.id for m in first.items], [m.id for m in rest.items], rest.next_cursor) == (["a"], ["b"], None)
    assert [m.id for m in (await AdminListModels(fakes.catalog)(PageRequest())).items] == ["a", "b", "off"]


async def test_the_openai_list_reads_every_page() -> None:
    fakes = Fakes()
    for n in range(205):
        await fakes.model(f"m{n:03}")
    listed = await ListOpenAIModels(fakes.catalog)()
    assert len(listed.data) == 205
    assert (listed.data[0].id, listed.data[0].owned_by) == ("m000", "scripted")


async def test_a_created_model_is_served_with_its_price_and_its_id_is_then_taken() -> None:
    fakes = Fakes()
    create = CreateModel(fakes.catalog, fakes.uow, fakes.providers)
    new = NewModel(id="gpt", provider="openai", upstream_model="gpt-x", pricing=PRICE, max_output_tokens=50)
    view = await create(new)
    await fakes.end_request()
    assert (await GetModel(fakes.catalog)("gpt")) == view
    assert (view.pricing.input_credits, view.pricing.output_credits) == ("20", "40")
    with pytest.raises(ModelExists):
        await create(new)


async def test_an_update_changes_only_what_is_given() -> None:
    fakes = Fakes()
    await fakes.model("m1", max_output_tokens=100)
    view = await UpdateModel(fakes.catalog, fakes.uow, fakes.providers)("m1", ModelPatch(enabled=False, pricing=PRICE))
    await fakes.end_request()
    assert (view.enabled, view.max_output_tokens, view.pricing.unit_tokens) == (False, 100, 100)
    assert (await GetModel(fakes.catalog)("m1")).enabled is False


async def test_a_deleted_model_is_gone_and_unknown_ids_are_not_found() -> None:
    fakes = Fakes()
    await fakes.model("m1")
    await DeleteModel(fakes.catalog, fakes.uow)("m1")
    await fakes.end_request()
    for call in (
        GetModel(fakes.catalog)("m1"),
        DeleteModel(fakes.catalog, fakes.uow)("m1"),
        UpdateModel(fakes.catalog, fakes.uow, fakes.providers)("m1", ModelPatch(enabled=True)),
    ):
        with pytest.raises(ModelNotFound):
            await call
