import base64
import secrets
from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec

from application import examples
from application.patterns import STORABLE_TEXT, whole
from application.ports.catalog import Catalog
from application.ports.clock import Clock
from application.ports.comparison import TypeProfiles
from application.ports.persistence import PageRequest, UnitOfWork
from domain.typeid import MAX_SCALE, MIN_SCALE, TypeIdNotFound, TypeProfile, UnknownModel

TypeIdText = Annotated[str, msgspec.Meta(pattern=whole(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"), examples=["essay-grader"])]
GENERATED_ID_BYTES = 10  # 80 bits: exactly 16 base32 characters, no padding
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000, pattern=STORABLE_TEXT)]


class TypeIdFields(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scale: Annotated[int, msgspec.Meta(ge=MIN_SCALE, le=MAX_SCALE)]
    system: Prompt
    user: Annotated[Prompt, msgspec.Meta(description="Must contain {reference} and {text}; may use {scale}.")]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    llm: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    name: Annotated[str, msgspec.Meta(max_length=200, pattern=STORABLE_TEXT)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000, pattern=STORABLE_TEXT)] = ""

    example: ClassVar[dict[str, Any]] = {
        "scale": 10,
        "system": (
            "You grade how faithfully a text restates a reference. Answer only with JSON "
            '{"score": <integer>, "explanation": "<one sentence>"}.'
        ),
        "user": "Reference:\n{reference}\n\nText:\n{text}\n\nScore the text from 0 to {scale}.",
        "model": "gemini-flash",
        "llm": "simulator",
        "description": "Grades a text against a reference on 0-10: same facts, nothing invented.",
    }


class NewTypeId(TypeIdFields, frozen=True, kw_only=True, forbid_unknown_fields=True):
    typeid: TypeIdText | None = None


class TypeIdView(msgspec.Struct, frozen=True, kw_only=True):
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

    example: ClassVar[dict[str, Any]] = {
        "typeid": examples.TYPEID,
        "name": None,
        **TypeIdFields.example,
        "created_at": examples.CREATED_AT,
        "updated_at": examples.CREATED_AT,
    }

    @classmethod
    def of(cls, profile: TypeProfile) -> "TypeIdView":
        return cls(
            typeid=profile.typeid,
            name=profile.name,
            scale=profile.scale,
            system=profile.system,
            user=profile.user,
            model=profile.model,
            llm=profile.llm,
            description=profile.description,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
        )


class TypeIdList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TypeIdView]
    next_cursor: str | None = None

    example: ClassVar[dict[str, Any]] = {"items": [TypeIdView.example], "next_cursor": None}


def _new_typeid() -> str:
    return "tid_" + base64.b32encode(secrets.token_bytes(GENERATED_ID_BYTES)).decode().lower()


class CreateTypeId:
    """TypeIDs: how two texts are compared — the scale of the score, the prompts, and the catalog model
    (`model`, with its provider as `llm`) that answers. 422 `unknown_model` when they do not match the catalog.
    Created without a `typeid`, one is generated (`tid_` + 16 base32 characters); a given one must be unused
    (409 `typeid_taken`)."""

    def __init__(self, profiles: TypeProfiles, catalog: Catalog, uow: UnitOfWork, clock: Clock) -> None:
        self._profiles = profiles
        self._catalog = catalog
        self._uow = uow
        self._clock = clock

    async def __call__(self, new: NewTypeId) -> TypeIdView:
        typeid = new.typeid or _new_typeid()
        profile = await _profile(self._catalog, self._clock, typeid, new, created_at=self._clock.now())
        await self._profiles.add(profile)
        await self._uow.commit()
        return TypeIdView.of(profile)


class ListTypeIds:
    """TypeIDs in id order, a page at a time."""

    def __init__(self, profiles: TypeProfiles) -> None:
        self._profiles = profiles

    async def __call__(self, page: PageRequest) -> TypeIdList:
        found = await self._profiles.page(page)
        return TypeIdList(items=[TypeIdView.of(p) for p in found.items], next_cursor=found.next_cursor)


class GetTypeId:
    """One TypeID."""

    def __init__(self, profiles: TypeProfiles) -> None:
        self._profiles = profiles

    async def __call__(self, typeid: str) -> TypeIdView:
        return TypeIdView.of(await _existing(self._profiles, typeid))


class ReplaceTypeId:
    """Replace a TypeID (every field)."""

    def __init__(self, profiles: TypeProfiles, catalog: Catalog, uow: UnitOfWork, clock: Clock) -> None:
        self._profiles = profiles
        self._catalog = catalog
        self._uow = uow
        self._clock = clock

    async def __call__(self, typeid: str, fields: TypeIdFields) -> TypeIdView:
        current = await _existing(self._profiles, typeid)
        profile = await _profile(self._catalog, self._clock, typeid, fields, created_at=current.created_at)
        await self._profiles.replace(profile)
        await self._uow.commit()
        return TypeIdView.of(profile)


class DeleteTypeId:
    """Delete a TypeID; 409 `typeid_in_use` while API keys use it."""

    def __init__(self, profiles: TypeProfiles, uow: UnitOfWork) -> None:
        self._profiles = profiles
        self._uow = uow

    async def __call__(self, typeid: str) -> None:
        if not await self._profiles.delete(typeid):
            raise TypeIdNotFound
        await self._uow.commit()


async def _existing(profiles: TypeProfiles, typeid: str) -> TypeProfile:
    profile = await profiles.get(typeid)
    if profile is None:
        raise TypeIdNotFound
    return profile


async def _profile(
    catalog: Catalog, clock: Clock, typeid: str, fields: TypeIdFields, *, created_at: datetime
) -> TypeProfile:
    model = await catalog.get(fields.model)
    if model is None or model.provider != fields.llm:
        raise UnknownModel(field="model")
    return TypeProfile(
        typeid=typeid,
        name=fields.name,
        scale=fields.scale,
        system=fields.system,
        user=fields.user,
        model=fields.model,
        llm=fields.llm,
        description=fields.description,
        created_at=created_at,
        updated_at=clock.now(),
    )
