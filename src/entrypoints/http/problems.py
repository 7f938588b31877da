"""Every error leaves as an RFC 9457 problem with a stable `code`; the status of each is decided here, once."""

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar

import msgspec
import structlog
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotEnoughCredit,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    SettlementDeferred,
    StorageUnavailable,
    TextTooLarge,
    Unauthenticated,
    UpstreamError,
)

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_RETRY_SOON = {"Retry-After": "1"}

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
    NotEnoughCredit: 402,
    RateLimited: 429,
    TextTooLarge: 413,
    UpstreamError: 502,
    ProviderUnavailable: 503,
    SettlementDeferred: 503,
    StorageUnavailable: 503,
}

MALFORMED_JSON = ("malformed_json", "The request body is not valid JSON.")
INVALID_REQUEST = ("validation_error", "The request is not valid; see `errors`.")
"""The problems of a request refused before any use case runs (`code`, `detail`): the document names them too."""

CODE_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "service_unavailable",
}


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str

    example: ClassVar[dict[str, Any]] = {"field": "max_tokens", "message": "Expected `int` >= 1"}


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details, as every error of this API is written."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = msgspec.field(default=None)

    example: ClassVar[dict[str, Any]] = {
        "type": "about:blank",
        "title": HTTPStatus(422).phrase,
        "status": 422,
        "detail": "The request is not valid; see `errors`.",
        "code": "validation_error",
        "errors": [FieldError.example],
    }


def status_for(error: type[DomainError]) -> int:
    """The status of an error class: the entry of its nearest ancestor in `STATUS_BY_ERROR`."""
    return next((STATUS_BY_ERROR[cls] for cls in error.__mro__ if cls in STATUS_BY_ERROR), 400)


def status_of(error: DomainError) -> int:
    return status_for(type(error))


def _problem(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status,
        type_="about:blank",
        title=HTTPStatus(status).phrase,
        detail=detail,
        headers=headers,
        extra={"code": code, **(extra or {})},
    )


def domain_problem(error: DomainError) -> ProblemDetailsException:
    headers, extra = None, None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    if isinstance(error, StorageUnavailable):
        log.error("database_unavailable", error=error.reason or type(error.__cause__).__name__)
        headers = _RETRY_SOON
    if isinstance(error, SettlementDeferred):
        headers = _RETRY_SOON
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(error, InvalidInput):
        extra = {"errors": [{"field": error.field, "message": error.detail}]}
    return _problem(status_of(error), error.code, error.detail, headers=headers, extra=extra)


def validation_problem(error: ValidationException) -> ProblemDetailsException:
    return _problem(422, *INVALID_REQUEST, extra={"errors": [msgspec.to_builtins(e) for e in _field_errors(error)]})


def http_problem(error: HTTPException) -> ProblemDetailsException:
    if isinstance(error.__cause__, SerializationException):
        return _problem(400, *MALFORMED_JSON)
    status = error.status_code
    detail = error.detail if status < 500 else HTTPStatus(status).phrase
    return _problem(status, CODE_BY_STATUS.get(status, "http_error"), detail, headers=error.headers)


def internal_problem(error: Exception) -> ProblemDetailsException:
    log.error("unhandled_error", exc_info=error)
    return _problem(500, "internal_error", "An unexpected error occurred; it has been logged.")


def _field_errors(error: ValidationException) -> list[FieldError]:
    extra = error.extra if isinstance(error.extra, list) else []
    errors = [
        FieldError(field=_field_name(item), message=str(item.get("message", "invalid value")))
        for item in extra
        if isinstance(item, dict)
    ]
    return errors or [FieldError(field="body", message=str(error.detail))]


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _field_name(item: dict[str, Any]) -> str:
    """msgspec names the path (`$.pricing.unit_tokens`); for a missing field it names it in the message."""
    key = str(item.get("key") or "body")
    if missing := _MISSING_FIELD.search(str(item.get("message", ""))):
        prefix = key.removeprefix("$").lstrip(".") if key.startswith("$") else ""
        return f"{prefix}.{missing.group(1)}" if prefix else missing.group(1)
    return key.removeprefix("$.")


PROBLEM_CONVERTERS: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    DomainError: domain_problem,
    ValidationException: validation_problem,
    HTTPException: http_problem,
    Exception: internal_problem,
}


def to_problem(error: Exception) -> ProblemDetailsException:
    for cls in type(error).__mro__:
        if convert := PROBLEM_CONVERTERS.get(cls):
            return convert(error)
    return internal_problem(error)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_to_problem_detail_map=PROBLEM_CONVERTERS))
