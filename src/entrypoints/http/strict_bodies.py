"""JSON bodies keep their JSON types: Litestar converts a body leniently (`"40"` becomes 40, `0` becomes false),
so a body the lenient conversion accepts is first decoded strictly against the handler's Struct, and a value of
another type than its schema says is refused (422 `validation_error` naming the field). A number without a
fraction is an integer whichever way it is written (`100.0`), as in JSON Schema. Bodies the lenient conversion
refuses are left to it, so every other error keeps its shape; the strict decode runs only on bodies."""

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$\.?(?P<path>[^`]*)`$")


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    field = request.route_handler.parsed_data_field
    target = None if field is None else field.annotation
    if not (isinstance(target, type) and issubclass(target, msgspec.Struct)):
        return
    body = await request.body()
    try:
        msgspec.json.decode(body, type=target)
    except msgspec.ValidationError as strict:
        try:
            msgspec.json.decode(body, type=target, strict=False)
        except msgspec.MsgspecError:
            return
        try:
            msgspec.convert(_integral(msgspec.json.decode(body)), target)
        except msgspec.ValidationError:
            raise _refused(strict) from None
    except msgspec.DecodeError:
        return


def _integral(value: Any) -> Any:
    """The decoded JSON with every float that has no fraction (`100.0`) as the integer it equals."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _refused(error: msgspec.ValidationError) -> ValidationException:
    text = str(error)
    match = _AT_PATH.match(text)
    message, key = (match["message"], match["path"] or "body") if match else (text, "body")
    return ValidationException(detail="Validation failed", extra=[{"message": message, "key": key, "source": "body"}])
