"""Form input into the use cases' own structs, and every error back next to its field, with the API's `code`."""

import re
import secrets
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from domain.errors import DomainError, InvalidInput

FORM_LEVEL = "_form"
"""The key of errors that belong to no field (shown at the top of the form)."""
_PATH = re.compile(r"at `\$\.([A-Za-z0-9_.]+)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


@dataclass(frozen=True, slots=True)
class FieldError:
    code: str
    message: str


FieldErrors = dict[str, FieldError]
T = TypeVar("T")


class FormInvalid(Exception):
    def __init__(self, errors: FieldErrors) -> None:
        super().__init__(errors)
        self.errors = errors


def parse(form: dict[str, Any], into: type[T]) -> T:
    """The struct's own fields of the form (not its CSRF token, `next`, idempotency key...); an input left empty
    counts as absent, so an optional field left blank takes its default."""
    names = {field.encode_name for field in msgspec.structs.fields(into)}  # type: ignore[arg-type]
    data = {name: value for name, value in form.items() if name in names and value != ""}
    try:
        return msgspec.convert(data, into, strict=False)
    except msgspec.ValidationError as error:
        raise FormInvalid(_validation_errors(str(error))) from error


def _validation_errors(message: str) -> FieldErrors:
    field = _PATH.search(message) or _MISSING.search(message)
    return {field.group(1) if field else FORM_LEVEL: FieldError("validation_error", message)}


def errors_of(error: DomainError, *, field: str = FORM_LEVEL) -> FieldErrors:
    """A domain error under the field it names (InvalidInput does), else under `field`."""
    name = error.field if isinstance(error, InvalidInput) else field
    return {name: FieldError(error.code, error.detail)}


def submission_key() -> str:
    """A hidden Idempotency-Key, made when the form is rendered: a double click or a resubmission is one change."""
    return secrets.token_urlsafe(18)
