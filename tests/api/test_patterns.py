"""Every pattern of the API matches the whole string: msgspec validates with `re.search`, where a bare `$` also
matches before a trailing newline, so `alice\\n` would pass for `alice` (a newline passes only where the pattern
itself takes one)."""

import re
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


async def test_no_pattern_of_the_document_accepts_a_trailing_newline(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/api-docs/openapi.json")).json()
    patterns = sorted(set(_patterns(document)))
    assert len(patterns) >= 5, patterns
    for pattern in patterns:
        _check(pattern)


def _check(pattern: str) -> None:
    validated = Annotated[str, msgspec.Meta(pattern=pattern)]

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(accepted=st.from_regex(pattern))
    def refuses_the_newline(accepted: str) -> None:
        whole_string = re.fullmatch(pattern, accepted + "\n") is not None
        try:
            msgspec.convert(accepted + "\n", validated)
        except msgspec.ValidationError:
            assert not whole_string, (pattern, accepted)
        else:
            assert whole_string, (pattern, accepted)

    assert re.compile(pattern)
    refuses_the_newline()


async def test_no_pattern_of_the_document_uses_a_class_python_and_ecma_read_differently(
    client: AsyncTestClient[Litestar],
) -> None:
    """`\\s`, `\\w`, `\\d` and `\\b` mean other characters in Python's `re` (which validates) than in ECMA-262 (which
    the document speaks): Python's `\\s` takes `\\x1c`-`\\x1f` and `\\x85`, ECMA's takes `\\ufeff`."""
    document = (await client.get("/api-docs/openapi.json")).json()
    ambiguous = re.compile(r"(?<!\\)(?:\\\\)*\\[sSwWdDbB]")
    assert [p for p in sorted(set(_patterns(document))) if ambiguous.search(p)] == []
