"""Domain errors. Each carries a stable `code`; the HTTP status is decided once, in the entrypoint."""

from typing import ClassVar


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


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    default_detail = "Unknown username or wrong password."


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    default_detail = "The token is invalid, expired or revoked."


class TokenReused(Unauthenticated):
    code = "token_reused"
    default_detail = "This refresh token was already used; every token of its session is now revoked."


class Forbidden(DomainError):
    code = "forbidden"
    default_detail = "This operation is not allowed for your role."


class NotFound(DomainError):
    code = "not_found"
    default_detail = "The resource does not exist."


class Conflict(DomainError):
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class UsernameTaken(Conflict):
    code = "username_taken"
    default_detail = "This username is taken."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request."


class NotEnoughCredit(DomainError):
    """The spend is refused: the balance, or the key's credit limit, does not cover it."""

    code = "payment_required"


class InsufficientBalance(NotEnoughCredit):
    code = "insufficient_balance"
    default_detail = "The balance does not cover this request."


class RateLimited(DomainError):
    code = "too_many_requests"
    default_detail = "Too many requests; retry later."

    def __init__(self, retry_after_seconds: int, detail: str = "") -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)


class UpstreamError(DomainError):
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


class ProviderUnavailable(DomainError):
    """The provider cannot be reached or is not configured, or it is overloaded (429/503)."""

    code = "provider_unavailable"
    default_detail = "The model provider is unavailable; retry later."


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_detail = "No enabled model has this id."


class InvalidSignature(Unauthenticated):
    code = "invalid_signature"
    default_detail = "The signature does not match."


class StaleTimestamp(Unauthenticated):
    code = "stale_timestamp"
    default_detail = "The timestamp is more than 300 seconds away from the server's time."


class ReplayedNonce(Unauthenticated):
    code = "replayed_nonce"
    default_detail = "This nonce was already used with this key."


class KeyRevoked(Unauthenticated):
    code = "key_revoked"
    default_detail = "This API key was revoked."


class SubscriptionInactive(Forbidden):
    code = "subscription_inactive"
    default_detail = "The key's subscription is not active (expired or suspended)."


class KeyCreditLimit(NotEnoughCredit):
    code = "key_credit_limit"
    default_detail = "This key reached its credit limit."


class TypeIdInUse(Conflict):
    code = "typeid_in_use"
    default_detail = "API keys still use this TypeID."


class UnsupportedParameter(DomainError):
    """The model's provider cannot honour a parameter the request sets: refused, never silently dropped."""

    code = "unsupported_parameter"

    def __init__(self, parameter: str, model: str) -> None:
        super().__init__(f"`{parameter}` is not supported by model {model!r}.")
        self.parameter = parameter


class UnknownModel(InvalidInput):
    code = "unknown_model"
    default_detail = "The model and llm do not name a model of the catalog."


class BalanceOutOfRange(InvalidInput):
    code = "balance_out_of_range"
    default_detail = "The balance would leave the range of ±1,000,000,000,000 credits."

    def __init__(self) -> None:
        super().__init__(field="amount")


class InvalidBase64(InvalidInput):
    code = "invalid_base64"
    default_detail = "The text is not valid base64."


class InvalidUtf8(InvalidInput):
    code = "invalid_utf8"
    default_detail = "The decoded text is not valid UTF-8."


class ReferenceQuotaExceeded(Conflict):
    code = "reference_quota_exceeded"
    default_detail = "The account's stored references would exceed its storage quota."


class TextTooLarge(DomainError):
    code = "payload_too_large"
    default_detail = "The text is larger than 256 KiB once decoded."


class UnparseableScore(UpstreamError):
    code = "unparseable_score"
    default_detail = "The model did not answer with a usable score, even after one retry."
