"""Every pattern of the API matches the whole string: msgspec validates with `re.search`, where a bare `$` also
matches before a trailing newline, so `alice\\n` would pass for `alice`."""

import re
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
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
        assert not accepted.endswith("\n"), (pattern, accepted)
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(accepted + "\n", validated)

    assert re.compile(pattern)
    refuses_the_newline()
