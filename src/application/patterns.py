"""Patterns of the API's strings, written once for validation and for the OpenAPI document.

msgspec validates a pattern with `re.search`, where `$` also matches before a trailing newline (`alice\\n` would
pass for `alice`). `whole` anchors a pattern at both ends and refuses that newline with a lookahead; in ECMA-262,
the dialect of JSON Schema, `$` matches only at the very end, so there the lookahead changes nothing and the
document states exactly what is validated."""


def whole(body: str) -> str:
    return f"^(?:{body})$(?!\\n)"


CREDITS = whole(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?")
DIGITS = whole("[0-9]+")
