from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.typeid import TypeProfile

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _profile(user: str = "Reference: {reference}\nText: {text}\nScore 0..{scale}", scale: int = 10) -> TypeProfile:
    return TypeProfile("essay", None, scale, "You grade texts.", user, "dr14", "simulator", "", NOW, NOW)


@given(reference=st.text(), text=st.text())
def test_rendering_inserts_the_texts_verbatim_even_with_braces(reference: str, text: str) -> None:
    rendered = _profile("<{reference}|{text}|{scale}>").render(reference, text)
    assert rendered == f"<{reference}|{text}|10>"


def test_literal_braces_in_the_template_survive() -> None:
    assert _profile('JSON {"a": 1} {reference} {text}').render("r", "t") == 'JSON {"a": 1} r t'


@pytest.mark.parametrize("template", ["{text} only", "{reference} only", "none", "{reference} {text} {refrence}"])
def test_templates_need_both_texts_and_no_unknown_placeholders(template: str) -> None:
    with pytest.raises(InvalidInput):
        _profile(template)


@pytest.mark.parametrize("scale", [1, 0, -5, 1001])
def test_scale_is_2_to_1000(scale: int) -> None:
    with pytest.raises(InvalidInput):
        _profile(scale=scale)


@pytest.mark.parametrize("scale", [2, 1000])
def test_scale_edges_are_allowed(scale: int) -> None:
    assert _profile(scale=scale).scale == scale
