"""A TypeID: the profile that says how two texts are compared and scored."""

import re
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Conflict, InvalidInput, NotFound

MIN_SCALE = 2
MAX_SCALE = 1000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REQUIRED = frozenset({"reference", "text"})
_ALLOWED = _REQUIRED | {"scale"}


class TypeIdNotFound(NotFound):
    default_detail = "No such TypeID."


class TypeIdTaken(Conflict):
    code = "typeid_taken"
    default_detail = "A TypeID with this id exists."


class TypeIdInUse(Conflict):
    code = "typeid_in_use"
    default_detail = "API keys still use this TypeID."


class UnknownModel(InvalidInput):
    code = "unknown_model"
    default_detail = "The model and llm do not name a model of the catalog."


@dataclass(frozen=True, slots=True)
class TypeProfile:
    typeid: str
    name: str | None
    scale: int
    system: str
    user: str
    model: str
    llm: str
    description: str
    created_at: datetime
    updated_at: datetime

    def __post_init__(self) -> None:
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise InvalidInput(f"scale is a whole number from {MIN_SCALE} to {MAX_SCALE}", field="scale")
        check_template(self.user)

    def render(self, reference: str, text: str) -> str:
        """One pass over the template: braces inside the texts are never read as placeholders."""
        values = {"reference": reference, "text": text, "scale": str(self.scale)}
        return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), self.user)


def check_template(template: str) -> None:
    names = set(_PLACEHOLDER.findall(template))
    if missing := _REQUIRED - names:
        raise InvalidInput(f"the user template must contain {{{sorted(missing)[0]}}}", field="user")
    if unknown := names - _ALLOWED:
        raise InvalidInput(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; use {{reference}}, {{text}} and {{scale}}", field="user"
        )
