from dishka.integrations.litestar import FromDishka, inject
from litestar import Router, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

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
from application.catalog.views import ModelPage, ModelView, OpenAIModelList
from domain.catalog import ModelExists, ModelNotFound
from domain.credits import InvalidAmount
from entrypoints.http.guards import require_user
from entrypoints.http.openapi import declared
from entrypoints.http.pagination import Cursor, Limit, page_request


@get("/", description=ListModels.__doc__)
@inject
async def list_models(use_case: FromDishka[ListModels], limit: Limit = 50, cursor: Cursor = None) -> ModelPage:
    return await use_case(page_request(limit, cursor))


@get("/models", description=ListOpenAIModels.__doc__)
@inject
async def openai_models_handler(use_case: FromDishka[ListOpenAIModels]) -> OpenAIModelList:
    return await use_case()


@get("/models", description=AdminListModels.__doc__)
@inject
async def admin_list_models(
    use_case: FromDishka[AdminListModels], limit: Limit = 50, cursor: Cursor = None
) -> ModelPage:
    return await use_case(page_request(limit, cursor))


@post(
    "/models",
    status_code=HTTP_201_CREATED,
    description=CreateModel.__doc__,
    opt=declared(ModelExists, InvalidAmount),
)
@inject
async def create_model(data: JSONBody[NewModel], use_case: FromDishka[CreateModel]) -> ModelView:
    return await use_case(data)


@get("/models/{model_id:str}", description=GetModel.__doc__, opt=declared(ModelNotFound))
@inject
async def get_model(model_id: FromPath[str], use_case: FromDishka[GetModel]) -> ModelView:
    return await use_case(model_id)


@patch(
    "/models/{model_id:str}",
    description=UpdateModel.__doc__,
    opt=declared(ModelNotFound, InvalidAmount),
)
@inject
async def update_model(
    model_id: FromPath[str], data: JSONBody[ModelPatch], use_case: FromDishka[UpdateModel]
) -> ModelView:
    return await use_case(model_id, data)


@delete(
    "/models/{model_id:str}",
    status_code=HTTP_204_NO_CONTENT,
    description=DeleteModel.__doc__,
    opt=declared(ModelNotFound),
)
@inject
async def delete_model(model_id: FromPath[str], use_case: FromDishka[DeleteModel]) -> None:
    await use_case(model_id)


models_router = Router(
    "/api/v1/models",
    route_handlers=[list_models],
    guards=[require_user],
    tags=["models"],
    security=[{"BearerAuth": []}],
)
admin_models_handlers = [admin_list_models, create_model, get_model, update_model, delete_model]
