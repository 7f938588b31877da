"""Users: search and page through accounts; change role and activation; adjust a balance; read the ledger."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import get, post
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Template
from litestar_htmx import HTMXRequest

from application.admin.balance import AdjustBalance, BalanceAdjustment
from application.admin.users import (
    GetUser,
    ListUserGenerations,
    ListUsers,
    ListUserTransactions,
    UpdateUser,
    UserPatch,
)
from application.ports.persistence import PageRequest
from domain.errors import DomainError
from entrypoints.console.forms import FieldErrors, FormInvalid, errors_of, parse, submission_key
from entrypoints.console.rendering import form_page, page
from entrypoints.http.pagination import Cursor

Form = URLEncodedBody[dict[str, str]]
PAGE_SIZE = 50
RECENT_GENERATIONS = 20


@get("/users")
@inject
async def user_list(
    request: HTMXRequest, use_case: FromDishka[ListUsers], q: FromQuery[str | None] = None, cursor: Cursor = None
) -> Template:
    found = await use_case(PageRequest(limit=PAGE_SIZE, cursor=cursor), username_contains=(q or "").strip() or None)
    return page(request, "pages/users.html", partial="pages/users/_rows.html", users=found, q=q or "")


@dataclass(frozen=True, slots=True)
class _Readers:
    """What the user's page shows after every form: the account, its ledger and its generations."""

    get_user: GetUser
    ledger: ListUserTransactions
    generations: ListUserGenerations


async def _detail(
    request: HTMXRequest,
    user_id: UUID,
    readers: _Readers,
    *,
    errors: FieldErrors | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
    cursor: str | None = None,
) -> Template:
    user = await readers.get_user(user_id)
    context: dict[str, Any] = {
        "user": user,
        "ledger": await readers.ledger(user_id, PageRequest(limit=PAGE_SIZE, cursor=cursor)),
        "generations": await readers.generations(user_id, PageRequest(limit=RECENT_GENERATIONS)),
        "errors": errors or {},
        "notice": notice,
        "form": form or {},
        "submission_key": submission_key(),
    }
    if errors:
        return form_page(request, "pages/user.html", errors, **{k: v for k, v in context.items() if k != "errors"})
    return page(request, "pages/user.html", **context)


@get("/users/{user_id:uuid}")
@inject
async def user_detail(
    request: HTMXRequest,
    user_id: FromPath[UUID],
    get_user: FromDishka[GetUser],
    ledger: FromDishka[ListUserTransactions],
    generations: FromDishka[ListUserGenerations],
    cursor: Cursor = None,
) -> Template:
    return await _detail(request, user_id, _Readers(get_user, ledger, generations), cursor=cursor)


@post("/users/{user_id:uuid}/account")
@inject
async def change_account(
    request: HTMXRequest,
    user_id: FromPath[UUID],
    data: Form,
    use_case: FromDishka[UpdateUser],
    get_user: FromDishka[GetUser],
    ledger: FromDishka[ListUserTransactions],
    generations: FromDishka[ListUserGenerations],
) -> Template:
    """Role and activation in one form; `last_admin` is shown next to the field that was changed."""
    changed = "is_active" if "is_active" in data else "role"
    readers = _Readers(get_user, ledger, generations)
    try:
        updated = await use_case(user_id, parse(data, UserPatch))
    except FormInvalid as invalid:
        return await _detail(request, user_id, readers, errors=invalid.errors)
    except DomainError as error:
        return await _detail(request, user_id, readers, errors=errors_of(error, field=changed))
    notice = f"{updated.username} is now {'an active' if updated.is_active else 'a deactivated'} {updated.role.value}."
    return await _detail(request, user_id, readers, notice=notice)


@post("/users/{user_id:uuid}/balance")
@inject
async def adjust_balance(
    request: HTMXRequest,
    user_id: FromPath[UUID],
    data: Form,
    use_case: FromDishka[AdjustBalance],
    get_user: FromDishka[GetUser],
    ledger: FromDishka[ListUserTransactions],
    generations: FromDishka[ListUserGenerations],
) -> Template:
    """The form's hidden key is the Idempotency-Key: the same submission twice is one ledger row."""
    readers = _Readers(get_user, ledger, generations)
    try:
        result = await use_case(
            user_id, parse(data, BalanceAdjustment), idempotency_key=data.get("idempotency_key") or None
        )
    except FormInvalid as invalid:
        return await _detail(request, user_id, readers, errors=invalid.errors, form=data)
    except DomainError as error:
        return await _detail(request, user_id, readers, errors=errors_of(error, field="amount"), form=data)
    notice = f"Adjusted by {result.transaction.amount} credits; the balance is now {result.balance}."
    return await _detail(request, user_id, readers, notice=notice)


handlers: list[Any] = [user_list, user_detail, change_account, adjust_balance]
