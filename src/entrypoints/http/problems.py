"""Every error leaves as an RFC 9457 problem with a stable `code`; the status of each is decided here, once."""

from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unauthenticated

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}

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


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 9457 problem details, as every error of this API is written."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = msgspec.field(default=None)


def problem_response(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, description=description, media_type=PROBLEM_MEDIA_TYPE)


def status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


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
    headers = getattr(error, "headers", None)
    return _problem(status_of(error), error.code, error.detail, headers=headers)


def validation_problem(error: ValidationException) -> ProblemDetailsException:
    if _is_malformed_body(error):
        return _problem(400, "malformed_json", "The request body is not valid JSON.")
    return _problem(
        422,
        "validation_error",
        "The request is not valid; see `errors`.",
        extra={"errors": [msgspec.to_builtins(e) for e in _field_errors(error)]},
    )


def http_problem(error: HTTPException) -> ProblemDetailsException:
    status = error.status_code
    detail = error.detail if status < 500 else HTTPStatus(status).phrase
    return _problem(status, CODE_BY_STATUS.get(status, "http_error"), detail, headers=error.headers)


def internal_problem(error: Exception) -> ProblemDetailsException:
    log.error("unhandled_error", exc_info=error)
    return _problem(500, "internal_error", "An unexpected error occurred; it has been logged.")


def _is_malformed_body(error: ValidationException) -> bool:
    return isinstance(error.detail, str) and error.detail.startswith(("Malformed JSON", "JSON is malformed"))


def _field_errors(error: ValidationException) -> list[FieldError]:
    extra = error.extra if isinstance(error.extra, list) else []
    errors = [
        FieldError(field=_field_name(item), message=str(item.get("message", "invalid value")))
        for item in extra
        if isinstance(item, dict)
    ]
    return errors or [FieldError(field="body", message=str(error.detail))]


def _field_name(item: dict[str, Any]) -> str:
    key = str(item.get("key", "body"))
    return key.removeprefix("$.") if key.startswith("$.") else key


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                DomainError: domain_problem,
                ValidationException: validation_problem,
                HTTPException: http_problem,
                Exception: internal_problem,
            }
        )
    )
