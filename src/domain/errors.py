"""Domain errors. Each carries a stable `code`; the HTTP status is decided once, in the entrypoint."""

from typing import ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    default_detail: ClassVar[str] = "The request cannot be fulfilled."

    def __init__(self, detail: str = "") -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class NotFound(DomainError):
    code = "not_found"
    default_detail = "The resource does not exist."


class Conflict(DomainError):
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class Unauthenticated(DomainError):
    code = "unauthorized"
    default_detail = "Authentication is required."


class Forbidden(DomainError):
    code = "forbidden"
    default_detail = "This operation is not allowed for your role."


class InvalidInput(DomainError):
    code = "validation_error"
    default_detail = "The request is not valid."
