"""API keys: issue one (its secret shown once), suspend, resume, revoke; its credit limit, expiry and TypeID; its
subscription and what it spent.

The secret leaves the server once: the issuing post keeps it in the (encrypted, `HttpOnly`) session only until the
key's page it redirects to has shown it, with `Cache-Control: no-store`; a reload, the back button or any later
page finds it gone. It never enters a URL."""

from typing import Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import get, post
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar_htmx import HTMXRequest

from application.admin.users import ListUsers
from application.comparison.billing import GetKeyBilling, GetKeysActivity
from application.comparison.keys import CreateKey, GetKey, KeyPatch, ListKeys, NewKey, RevokeKey, UpdateKey
from application.comparison.subscription import GetSubscription
from application.comparison.typeids import ListTypeIds
from application.ports.persistence import PageRequest
from domain.errors import DomainError
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse
from entrypoints.console.pages.window import DayWindow
from entrypoints.console.rendering import form_page, page
from entrypoints.http.pagination import Cursor

Form = URLEncodedBody[dict[str, str]]
PAGE_SIZE = 50
CHOICES = PageRequest(limit=200)
ISSUED = "issued_secret"
"""The session entry that carries a new key's secret to its page, once."""
NO_STORE = CacheControlHeader(no_store=True)


def utc_instant(text: str) -> str:
    """A `datetime-local` input (`2026-12-31T18:00`), read as UTC as the form says; blank stays blank."""
    if not text:
        return text
    return f"{text}:00Z" if len(text) == len("2026-12-31T18:00") else f"{text}Z"


async def _choices(users: ListUsers, typeids: ListTypeIds) -> dict[str, Any]:
    return {"users": (await users(CHOICES)).items, "typeids": (await typeids(CHOICES)).items}


async def _keys_page(
    request: HTMXRequest,
    keys: ListKeys,
    activity: GetKeysActivity,
    users: ListUsers,
    typeids: ListTypeIds,
    *,
    user_id: UUID | None,
    cursor: str | None = None,
    form: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
) -> Template:
    choices = await _choices(users, typeids)
    context: dict[str, Any] = {
        "keys": await keys(user_id, PageRequest(limit=PAGE_SIZE, cursor=cursor)),
        "activity": {row.api_key: row for row in (await activity()).items},
        "usernames": {user.id: user.username for user in choices["users"]},
        "user_id": user_id,
        "form": form or {},
        **choices,
    }
    if errors:
        return form_page(request, "pages/keys.html", errors, **context)
    return page(request, "pages/keys.html", errors={}, **context)


class KeyFilter(msgspec.Struct, frozen=True, kw_only=True):
    user_id: UUID | None = None


@get("/keys")
@inject
async def key_list(
    request: HTMXRequest,
    keys: FromDishka[ListKeys],
    activity: FromDishka[GetKeysActivity],
    users: FromDishka[ListUsers],
    typeids: FromDishka[ListTypeIds],
    user_id: FromQuery[str] = "",
    typeid: FromQuery[str] = "",
    cursor: Cursor = None,
) -> Template:
    """The owner filter is text checked here: a bad one is shown beside its input, the list unfiltered."""
    form = {"user_id": user_id, "typeid": typeid}
    try:
        owner = parse({"user_id": user_id.strip()}, KeyFilter).user_id
    except FormInvalid as invalid:
        errors = {f"filter.{name}": error for name, error in invalid.errors.items()}
        return await _keys_page(request, keys, activity, users, typeids, user_id=None, form=form, errors=errors)
    return await _keys_page(request, keys, activity, users, typeids, user_id=owner, cursor=cursor, form=form)


@post("/keys")
@inject
async def issue_key(
    request: HTMXRequest,
    data: Form,
    use_case: FromDishka[CreateKey],
    keys: FromDishka[ListKeys],
    activity: FromDishka[GetKeysActivity],
    users: FromDishka[ListUsers],
    typeids: FromDishka[ListTypeIds],
) -> Template | Redirect:
    try:
        created = await use_case(parse(data | {"expires_at": utc_instant(data.get("expires_at", ""))}, NewKey))
    except (FormInvalid, DomainError) as error:
        errors = error.errors if isinstance(error, FormInvalid) else errors_of(error)
        return await _keys_page(request, keys, activity, users, typeids, user_id=None, form=data, errors=errors)
    request.session[ISSUED] = {"api_key": created.api_key, "secret_key": created.secret_key}
    return Redirect(f"/admin/keys/{created.api_key}", status_code=303)


async def _key_page(
    request: HTMXRequest,
    api_key: str,
    get_key: GetKey,
    subscription: GetSubscription,
    billing: GetKeyBilling,
    typeids: ListTypeIds,
    *,
    window: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    notice: str | None = None,
) -> Template:
    errors = dict(errors or {})
    window = window or {}
    try:
        since, until = parse(window, DayWindow).bounds()
        spent = await billing(api_key, since, until)
    except (FormInvalid, DomainError) as error:
        errors |= error.errors if isinstance(error, FormInvalid) else errors_of(error, field="from")
        spent = await billing(api_key, None, None)
    issued = request.session.pop(ISSUED, None)
    secret = issued["secret_key"] if isinstance(issued, dict) and issued.get("api_key") == api_key else None
    context: dict[str, Any] = {
        "key": await get_key(api_key),
        "subscription": await subscription(api_key),
        "billing": spent,
        "typeids": (await typeids(CHOICES)).items,
        "window": window,
        "secret": secret,
        "notice": notice,
    }
    headers = {"Cache-Control": NO_STORE.to_header()} if secret else None
    if errors:
        response = form_page(request, "pages/key.html", errors, **context)
    else:
        response = page(request, "pages/key.html", errors={}, **context)
    if headers:
        response.headers.update(headers)
    return response


@get("/keys/{api_key:str}")
@inject
async def key_detail(
    request: HTMXRequest,
    api_key: FromPath[str],
    get_key: FromDishka[GetKey],
    subscription: FromDishka[GetSubscription],
    billing: FromDishka[GetKeyBilling],
    typeids: FromDishka[ListTypeIds],
) -> Template:
    window = {name: request.query_params[name] for name in ("from", "to") if request.query_params.get(name)}
    return await _key_page(request, api_key, get_key, subscription, billing, typeids, window=window)


@post("/keys/{api_key:str}")
@inject
async def change_key(
    request: HTMXRequest,
    api_key: FromPath[str],
    data: Form,
    use_case: FromDishka[UpdateKey],
    get_key: FromDishka[GetKey],
    subscription: FromDishka[GetSubscription],
    billing: FromDishka[GetKeyBilling],
    typeids: FromDishka[ListTypeIds],
) -> Template:
    """One form per change, named by its one field: `status`, `credit_limit` (blank removes it), `expires_at` or
    `typeid`; a refusal is shown beside that field."""
    changed = next((name for name in ("status", "credit_limit", "expires_at", "typeid") if name in data), "status")
    value = data.get(changed)
    if changed == "expires_at":
        value = utc_instant(value or "")
    try:
        patch = parse({changed: value or None}, KeyPatch)
        updated = await use_case(api_key, patch)
    except (FormInvalid, DomainError) as error:
        errors = error.errors if isinstance(error, FormInvalid) else errors_of(error, field=changed)
        return await _key_page(request, api_key, get_key, subscription, billing, typeids, errors=errors)
    notice = f"Saved: the subscription is {updated.subscription.value}."
    return await _key_page(request, api_key, get_key, subscription, billing, typeids, notice=notice)


@post("/keys/{api_key:str}/revoke")
@inject
async def revoke_key(
    request: HTMXRequest,
    api_key: FromPath[str],
    use_case: FromDishka[RevokeKey],
    get_key: FromDishka[GetKey],
    subscription: FromDishka[GetSubscription],
    billing: FromDishka[GetKeyBilling],
    typeids: FromDishka[ListTypeIds],
) -> Template:
    await use_case(api_key)
    notice = "Revoked: the key and every token issued from it stopped working, for good."
    return await _key_page(request, api_key, get_key, subscription, billing, typeids, notice=notice)


handlers: list[Any] = [key_list, issue_key, key_detail, change_key, revoke_key]
