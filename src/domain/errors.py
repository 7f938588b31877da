"""The kinds of error. Each carries a stable `code`; the HTTP status of each kind is decided once, in the entrypoint.
Specific errors subclass a kind beside the concept they belong to (`InsufficientBalance` in `domain.wallet`, ...)."""

from datetime import timedelta
from typing import ClassVar

from domain.routing import Failure


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    default_detail: ClassVar[str] = "The request cannot be fulfilled."

    def __init__(self, detail: str = "") -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class InvalidInput(DomainError):
    """A value that passed the schema but breaks a domain rule; `field` names it for the client."""

    code = "validation_error"
    default_detail = "The request is not valid."

    def __init__(self, detail: str = "", *, field: str = "body") -> None:
        super().__init__(detail)
        self.field = field


class Unauthenticated(DomainError):
    code = "unauthorized"
    default_detail = "Authentication is required."


class Forbidden(DomainError):
    code = "forbidden"
    default_detail = "This operation is not allowed for your role."


class NotFound(DomainError):
    code = "not_found"
    default_detail = "The resource does not exist."


class Conflict(DomainError):
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class NotEnoughCredit(DomainError):
    """The spend is refused: the balance, or the key's credit limit, does not cover it."""

    code = "payment_required"


class RateLimited(DomainError):
    code = "too_many_requests"
    default_detail = "Too many requests; retry later."

    def __init__(self, retry_after_seconds: int, detail: str = "") -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class ProviderFailure(DomainError):
    """A deployment failed: `failure` says how (None: not an upstream's doing, e.g. not configured), and a 429's
    `retry_after` how long to leave it alone."""

    def __init__(
        self, detail: str = "", *, failure: Failure | None = None, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(detail)
        self.failure = failure
        self.retry_after = retry_after


class UpstreamError(ProviderFailure):
    """The provider answered, but not with a usable completion (error status, garbage, a broken stream)."""

    code = "upstream_error"
    default_detail = "The model provider failed to produce an answer."


class SettlementDeferred(DomainError):
    """A generation ended but its charge could not be written now; the reaper writes it when its lease runs out."""

    code = "service_unavailable"
    default_detail = (
        "The charge could not be recorded now; the generation is settled from its last checkpoint when its lease "
        "runs out."
    )


class StorageUnavailable(DomainError):
    """The database did not answer in time, or refused the connection: nothing was written; retry later."""

    code = "service_unavailable"
    default_detail = "The database is unavailable or overloaded; retry later."

    def __init__(self, reason: str = "") -> None:
        """`reason` is for the logs (the driver's error and SQLSTATE), never for the client."""
        super().__init__()
        self.reason = reason


class ProviderUnavailable(ProviderFailure):
    """The provider cannot be reached or is not configured, or it is overloaded (429/503)."""

    code = "provider_unavailable"
    default_detail = "The model provider is unavailable; retry later."


class UnsupportedParameter(DomainError):
    """The model's provider cannot honour a parameter the request sets: refused, never silently dropped."""

    code = "unsupported_parameter"
    default_detail = "The model's provider cannot honour a parameter the request sets."

    def __init__(self, parameter: str, model: str) -> None:
        super().__init__(f"`{parameter}` is not supported by model {model!r}.")
        self.parameter = parameter


class TextTooLarge(DomainError):
    code = "payload_too_large"
    default_detail = "The text is larger than 256 KiB once decoded."
