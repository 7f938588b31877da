"""Patterns of the API's strings, written once for validation and for the OpenAPI document.

msgspec validates a pattern with `re.search`, where `$` also matches before a trailing newline (`alice\\n` would
pass for `alice`). `whole` anchors a pattern at both ends and refuses that newline with a lookahead; in ECMA-262,
the dialect of JSON Schema, `$` matches only at the very end, so there the lookahead changes nothing and the
document states exactly what is validated."""

from domain.credits import DECIMAL, decimal_text


def whole(body: str) -> str:
    return f"^(?:{body})$(?!\\n)"


CREDITS = whole(DECIMAL)
"""Any amount the API writes (the text `Credits.parse` reads)."""

# An amount a request sends is below 9,000,000,000,000 credits either way, so every text these match is an amount
# of micro-credits (BIGINT): a schema-valid request never meets "out of range". Zero changes nothing.
_BELOW_9E12 = "0|[1-9][0-9]{0,11}|[1-8][0-9]{12}"
_ZERO = r"-?0(\.0+)?$"
ADJUSTMENT = whole(f"(?!{_ZERO}){decimal_text(_BELOW_9E12)}")
POSITIVE_CREDITS = whole(f"(?!{_ZERO}){decimal_text(_BELOW_9E12, signed=False)}")
DIGITS = whole("[0-9]+")
TOOL_NAME = whole("[a-zA-Z0-9_-]{1,64}")
"""A tool's (function's) name, as OpenAI and Anthropic both allow it."""
_URL_CHARACTERS = r"[^\x00-\x20\x7f]*"
HTTP_URL = whole(f"https?://{_URL_CHARACTERS}")
IMAGE_URL = whole(f"(data:|https?://){_URL_CHARACTERS}")
"""A `data:<media type>;base64,...` URL, or an http(s) URL the provider fetches."""

# What `\s`, `\w`, `\d` or `\b` would mean differs between Python's `re` and ECMA-262, so classes are spelled out.
# Not in an address: `@`, control characters, and Unicode's White_Space and the BOM.
_ADDRESS_CHARACTER = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
EMAIL = whole(rf"{_ADDRESS_CHARACTER}+@{_ADDRESS_CHARACTER}+\.{_ADDRESS_CHARACTER}+")

# A calendar date of years 0001-9999 (29 February in leap years only), optionally a time to the microsecond and
# an offset: every string it matches `datetime.fromisoformat` reads, and no other.
_MONTH_DAY = r"(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31"
_LEAP_YEAR = r"[0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
INSTANT = whole(rf"(?!0000)([0-9]{{4}}-({_MONTH_DAY})|({_LEAP_YEAR})-02-29)({_TIME})?")

# Text PostgreSQL stores: its `text` type holds no NUL (U+0000). Any newline is part of such a text.
STORABLE_TEXT = r"^[^\x00]*$"
