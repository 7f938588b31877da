"""Pages and their errors as HTML: a full page for a navigation, the page's partial for an htmx request."""

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap
from litestar_htmx import HTMXRequest

from domain.errors import DomainError, Unauthenticated
from entrypoints.console.auth import CONSOLE_PATH
from entrypoints.console.forms import FieldErrors
from entrypoints.http.problems import status_of

CSRF_REFUSED = "csrf_failed"


def page(
    request: HTMXRequest, template: str, *, partial: str | None = None, status_code: int = 200, **context: Any
) -> Template:
    """`partial` is the fragment an htmx request swaps in (a table body, a form): the full page includes it."""
    name = partial if partial and request.htmx and not request.htmx.boosted else template
    return Template(template_name=name, context=context, status_code=status_code)


def form_page(
    request: HTMXRequest, template: str, errors: FieldErrors, *, partial: str | None = None, **context: Any
) -> Template:
    """A refused form, rendered again with its values and its errors: 422 (or the error's own status)."""
    return page(request, template, partial=partial, status_code=422, errors=errors, **context)


def _error_page(request: Request[Any, Any, Any], status: int, code: str, detail: str) -> Template:
    return Template(
        template_name="error.html",
        context={"status": status, "title": HTTPStatus(status).phrase, "code": code, "detail": detail},
        status_code=status,
    )


def _sign_in_again(request: Request[Any, Any, Any], error: Unauthenticated) -> Response[Any]:
    target = f"{CONSOLE_PATH}/login?next={quote(request.url.path)}&reason={quote(error.detail)}"
    if request.headers.get("hx-request"):
        return Response(content=None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _domain_error(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    if isinstance(error, Unauthenticated):
        return _sign_in_again(request, error)
    return _error_page(request, status_of(error), error.code, error.detail)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    if isinstance(error, PermissionDeniedException):
        return _error_page(request, 403, CSRF_REFUSED, "The form was not accepted: reload the page and try again.")
    if isinstance(error, NotFoundException):
        return _error_page(request, 404, "not_found", "There is no such page.")
    return _error_page(request, error.status_code, "bad_request", str(error.detail))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {DomainError: _domain_error, HTTPException: _http_error}
