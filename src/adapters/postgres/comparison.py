"""TypeIDs, API keys, login nonces and reference texts."""

from datetime import datetime
from uuid import UUID

from sqlalchemy import RowMapping, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.cursors import keyset_page
from adapters.postgres.tables import api_keys, auth_nonces, generations, text_references, type_profiles, users
from application.ports.comparison import (
    ApiKeys,
    KeyChanges,
    KeyCredentials,
    NonceStore,
    References,
    TextReference,
    TypeProfiles,
)
from application.ports.persistence import Page, PageRequest
from domain.api_key import ApiKey, KeyStatus
from domain.credits import Credits
from domain.typeid import TypeIdInUse, TypeIdTaken, TypeProfile
from domain.user import Role

_KEY_COLUMNS = (
    api_keys.c.api_key,
    api_keys.c.user_id,
    api_keys.c.typeid,
    api_keys.c.name,
    api_keys.c.status,
    api_keys.c.expires_at,
    api_keys.c.credit_limit,
    api_keys.c.created_at,
)


def _profile(m: RowMapping) -> TypeProfile:
    return TypeProfile(
        typeid=m["typeid"],
        name=m["name"],
        scale=m["scale"],
        system=m["system"],
        user=m["user_template"],
        model=m["model"],
        llm=m["llm"],
        description=m["description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _profile_values(profile: TypeProfile) -> dict[str, object]:
    return {
        "name": profile.name,
        "scale": profile.scale,
        "system": profile.system,
        "user_template": profile.user,
        "model": profile.model,
        "llm": profile.llm,
        "description": profile.description,
        "updated_at": profile.updated_at,
    }


def _key(m: RowMapping) -> ApiKey:
    return ApiKey(
        api_key=m["api_key"],
        user_id=m["user_id"],
        typeid=m["typeid"],
        name=m["name"],
        status=KeyStatus(m["status"]),
        expires_at=m["expires_at"],
        credit_limit=None if m["credit_limit"] is None else Credits(m["credit_limit"]),
        created_at=m["created_at"],
    )


class PgTypeProfiles(TypeProfiles):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, typeid: str) -> TypeProfile | None:
        row = (await self._session.execute(select(type_profiles).where(type_profiles.c.typeid == typeid))).one_or_none()
        return None if row is None else _profile(row._mapping)

    async def page(self, page: PageRequest) -> Page[TypeProfile]:
        return await keyset_page(
            self._session, select(type_profiles), page, keys=[type_profiles.c.typeid], item=_profile
        )

    async def add(self, profile: TypeProfile) -> None:
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(type_profiles).values(
                        typeid=profile.typeid, created_at=profile.created_at, **_profile_values(profile)
                    )
                )
        except IntegrityError:
            raise TypeIdTaken from None

    async def replace(self, profile: TypeProfile) -> bool:
        result = await self._session.execute(
            update(type_profiles)
            .where(type_profiles.c.typeid == profile.typeid)
            .values(**_profile_values(profile))
            .returning(type_profiles.c.typeid)
        )
        return result.one_or_none() is not None

    async def delete(self, typeid: str) -> bool:
        try:
            async with self._session.begin_nested():
                result = await self._session.execute(
                    delete(type_profiles).where(type_profiles.c.typeid == typeid).returning(type_profiles.c.typeid)
                )
                return result.one_or_none() is not None
        except IntegrityError:
            raise TypeIdInUse from None


class PgApiKeys(ApiKeys):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, key: ApiKey, secret_ciphertext: bytes) -> None:
        await self._session.execute(
            insert(api_keys).values(
                api_key=key.api_key,
                user_id=key.user_id,
                typeid=key.typeid,
                name=key.name,
                status=key.status.value,
                expires_at=key.expires_at,
                credit_limit=None if key.credit_limit is None else key.credit_limit.micros,
                secret_ciphertext=secret_ciphertext,
                created_at=key.created_at,
            )
        )

    async def get(self, api_key: str) -> ApiKey | None:
        row = (await self._session.execute(select(*_KEY_COLUMNS).where(api_keys.c.api_key == api_key))).one_or_none()
        return None if row is None else _key(row._mapping)

    async def credentials(self, api_key: str) -> KeyCredentials | None:
        row = (
            await self._session.execute(
                select(
                    *_KEY_COLUMNS,
                    api_keys.c.secret_ciphertext,
                    users.c.username,
                    users.c.role,
                    func.greatest(users.c.sessions_valid_after, api_keys.c.sessions_valid_after).label("valid_after"),
                )
                .join(users, users.c.id == api_keys.c.user_id)
                .where(api_keys.c.api_key == api_key, users.c.is_active)
            )
        ).one_or_none()
        if row is None:
            return None
        return KeyCredentials(
            key=_key(row._mapping),
            username=row.username,
            role=Role(row.role),
            secret_ciphertext=bytes(row.secret_ciphertext),
            sessions_valid_after=row.valid_after,
        )

    async def of(self, user_id: UUID | None, page: PageRequest) -> Page[ApiKey]:
        query = select(*_KEY_COLUMNS)
        if user_id is not None:
            query = query.where(api_keys.c.user_id == user_id)
        return await keyset_page(
            self._session, query, page, keys=[api_keys.c.created_at, api_keys.c.api_key], item=_key, descending=True
        )

    async def change(self, api_key: str, changes: KeyChanges) -> bool:
        values: dict[str, object] = {}
        if changes.expires_at is not None:
            values["expires_at"] = changes.expires_at
        if changes.status is not None:
            values["status"] = changes.status.value
        if changes.typeid is not None:
            values["typeid"] = changes.typeid
        if changes.credit_limit is not None or changes.clear_credit_limit:
            values["credit_limit"] = None if changes.credit_limit is None else changes.credit_limit.micros
        live = (api_keys.c.api_key == api_key) & (api_keys.c.status != KeyStatus.REVOKED.value)
        if not values:
            return await self._session.scalar(select(api_keys.c.api_key).where(live)) is not None
        query = update(api_keys).where(live).values(**values).returning(api_keys.c.api_key)
        return (await self._session.execute(query)).one_or_none() is not None

    async def end_sessions(self, api_key: str, valid_after: datetime) -> None:
        await self._session.execute(
            update(api_keys).where(api_keys.c.api_key == api_key).values(sessions_valid_after=valid_after)
        )

    async def ciphertexts(self) -> list[tuple[str, bytes]]:
        rows = await self._session.execute(select(api_keys.c.api_key, api_keys.c.secret_ciphertext).with_for_update())
        return [(row.api_key, bytes(row.secret_ciphertext)) for row in rows]

    async def set_ciphertext(self, api_key: str, secret_ciphertext: bytes) -> None:
        await self._session.execute(
            update(api_keys).where(api_keys.c.api_key == api_key).values(secret_ciphertext=secret_ciphertext)
        )

    async def spent(self, api_key: str) -> Credits:
        total = await self._session.scalar(
            select(func.coalesce(func.sum(generations.c.cost), 0)).where(generations.c.api_key == api_key)
        )
        return Credits(int(total or 0))


class PgNonceStore(NonceStore):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, api_key: str, nonce: str, expires_at: datetime) -> bool:
        claimed = await self._session.scalar(
            pg_insert(auth_nonces)
            .values(api_key=api_key, nonce=nonce, expires_at=expires_at)
            .on_conflict_do_nothing()
            .returning(auth_nonces.c.nonce)
        )
        return claimed is not None


class PgReferences(References):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, reference: TextReference, max_stored_bytes: int) -> bool:
        """Under a transaction-scoped advisory lock per owner: the sum is taken after the previous holder
        committed, over the references that exist then (a purge needs no bookkeeping)."""
        if max_stored_bytes:
            owner = f"text_references:{reference.user_id}"
            await self._session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(owner, 0))))
            stored = await self._session.scalar(
                select(func.sum(func.octet_length(text_references.c.content))).where(
                    text_references.c.user_id == reference.user_id
                )
            )
            if int(stored or 0) + len(reference.content.encode()) > max_stored_bytes:
                return False
        await self._session.execute(
            insert(text_references).values(
                id=reference.id,
                user_id=reference.user_id,
                api_key=reference.api_key,
                name=reference.name,
                content=reference.content,
                length=len(reference.content),
                created_at=reference.created_at,
            )
        )
        return True

    async def get(self, reference_id: UUID) -> TextReference | None:
        row = (
            await self._session.execute(select(text_references).where(text_references.c.id == reference_id))
        ).one_or_none()
        if row is None:
            return None
        return TextReference(
            id=row.id,
            user_id=row.user_id,
            api_key=row.api_key,
            name=row.name,
            content=row.content,
            created_at=row.created_at,
        )
