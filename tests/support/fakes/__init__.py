"""One set of in-memory fakes of the application's ports, on one shared database, and the ways a test sets the
world up through them (a user, funds, a model, a key), each committed as a finished request would be.

The cosmicpython model (`FakeUnitOfWork` in tests/unit/test_handlers.py), with rollback kept honest: what a use
case did not commit is gone after `end_request()`."""

import random
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from adapters.rate_limit.memory import MemoryRateLimiter
from application.accounts.policy import AccountPolicy
from application.accounts.sessions import SessionTokens
from application.generations.open_runs import LiveRuns, OpenRuns
from application.generations.routing import DeploymentHealth
from application.generations.run import GenerationPolicy
from application.generations.start import Order, StartGeneration
from application.limits.quota import Quotas, RateLimitPolicy
from application.ports.llm import ChatMessage, TextDelta, UsageReport
from application.ports.persistence import NewUser, Posting
from domain.api_key import ApiKey, KeyStatus
from domain.catalog import CatalogModel
from domain.credits import Credits
from domain.errors import UpstreamError
from domain.generation import GenerationStatus
from domain.pricing import Pricing
from domain.routing import BreakerPolicy
from domain.typeid import TypeProfile
from domain.user import Principal, Role, User
from domain.wallet import EntryKind, LedgerEntry
from tests.support.fakes.accounts import (
    FakeIdempotencyStore,
    FakeRefreshTokenStore,
    FakeThrottleCounter,
    FakeUsers,
    FakeWalletLedger,
)
from tests.support.fakes.catalog import FakeCatalog
from tests.support.fakes.clock import FrozenClock, SequentialIds
from tests.support.fakes.comparison import FakeApiKeys, FakeNonceStore, FakeReferences, FakeTypeProfiles
from tests.support.fakes.generations import (
    FakeBilling,
    FakeGenerationRecords,
    FakeProviders,
    ScriptedProvider,
)
from tests.support.fakes.housekeeping import FakeHousekeeping
from tests.support.fakes.metrics import RecordingMetrics, RecordingRoutingMetrics
from tests.support.fakes.security import (
    FakeAccessTokens,
    FakeCipher,
    FakeIdentity,
    FakePasswordHasher,
    FakePrincipalReader,
)
from tests.support.fakes.state import FakeDatabase, FakeUnitOfWork

PASSWORD = "correct horse battery"
PRICING = Pricing(1, Credits.parse("0.001"), Credits.parse("0.002"))
"""A credit is a thousand prompt tokens or five hundred completion tokens."""
KEY_SECRET = "sk_test-secret"
ACCOUNTS = AccountPolicy(signup_credits=Credits.zero(), login_failure_limit=0, registrations_per_hour=0)


@dataclass
class Fakes:
    clock: FrozenClock = field(default_factory=FrozenClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    provider: ScriptedProvider = field(default_factory=ScriptedProvider)

    def __post_init__(self) -> None:
        self.db = FakeDatabase(self.clock)
        self.uow = FakeUnitOfWork(self.db)
        self.users = FakeUsers(self.db)
        self.ledger = FakeWalletLedger(self.db)
        self.idempotency = FakeIdempotencyStore(self.db)
        self.throttle = FakeThrottleCounter(self.db)
        self.refresh_tokens = FakeRefreshTokenStore(self.db)
        self.catalog = FakeCatalog(self.db)
        self.profiles = FakeTypeProfiles(self.db)
        self.keys = FakeApiKeys(self.db)
        self.nonces = FakeNonceStore(self.db)
        self.references = FakeReferences(self.db)
        self.billing = FakeBilling(self.db)
        self.records = FakeGenerationRecords(self.db)
        self.providers = FakeProviders({"scripted": self.provider})
        self.housekeeping = FakeHousekeeping(self.db)
        self.metrics = RecordingMetrics()
        self.routing_metrics = RecordingRoutingMetrics()
        self.breaker_policy = BreakerPolicy()
        self.rng = random.Random(18)
        self.health = DeploymentHealth(self.clock, self.breaker_policy, self.routing_metrics, self.rng.random)
        self.rate_limiter = MemoryRateLimiter()
        self.hasher = FakePasswordHasher()
        self.access_tokens = FakeAccessTokens()
        self.principals = FakePrincipalReader(self.db)
        self.identity = FakeIdentity(self.db)
        self.cipher = FakeCipher()
        self.live_runs = LiveRuns()
        self.open_runs = OpenRuns(self.live_runs)

    async def end_request(self) -> None:
        """What the request's session does as it closes: whatever was not committed rolls back."""
        await self.uow.rollback()

    async def user(self, username: str = "ada", *, role: Role = Role.CLIENT, password: str = PASSWORD) -> User:
        user = await self.users.add(
            NewUser(self.ids.new_id(), username, None, await self.hasher.hash(password), role, self.clock.now())
        )
        await self.uow.commit()
        return user

    async def fund(self, user_id: UUID, amount: str) -> LedgerEntry:
        """The fakes' one way to give a user credits: an admin adjustment of `amount` (a credits string)."""
        posting = Posting(self.ids.new_id(), user_id, EntryKind.ADMIN_ADJUSTMENT, Credits.parse(amount), reason="test")
        entry = await self.ledger.post(posting)
        await self.uow.commit()
        return entry

    async def funded_client(self, username: str = "ada", amount: str = "100") -> User:
        user = await self.user(username)
        await self.fund(user.id, amount)
        return user

    def act_as(self, user: User, api_key: str | None = None) -> None:
        self.identity.act_as(Principal(user.id, user.role, api_key))

    async def model(self, model_id: str = "m1", *, max_output_tokens: int = 100, enabled: bool = True) -> CatalogModel:
        model = CatalogModel(model_id, "scripted", f"up-{model_id}", "", PRICING, max_output_tokens, enabled)
        await self.catalog.add(model)
        await self.uow.commit()
        return model

    async def profile(self, typeid: str = "grader") -> TypeProfile:
        """A TypeID scoring on 0-10 with the model `m1`."""
        now = self.clock.now()
        profile = TypeProfile(
            typeid, None, 10, "Answer JSON.", "{reference} vs {text} on {scale}", "m1", "scripted", "", now, now
        )
        await self.profiles.add(profile)
        await self.uow.commit()
        return profile

    async def key(
        self,
        user: User,
        *,
        lifetime: timedelta = timedelta(days=30),
        credit_limit: str | None = None,
        status: KeyStatus = KeyStatus.ACTIVE,
    ) -> ApiKey:
        now = self.clock.now()
        key = ApiKey(
            api_key=f"ak_{self.ids.new_id().hex[-8:]}",
            user_id=user.id,
            typeid="grader",
            name=None,
            status=status,
            expires_at=now + lifetime,
            credit_limit=None if credit_limit is None else Credits.parse(credit_limit),
            created_at=now,
        )
        await self.keys.add(key, self.cipher.encrypt(KEY_SECRET, key.api_key))
        await self.uow.commit()
        return key

    def sessions(self, policy: AccountPolicy = ACCOUNTS) -> SessionTokens:
        return SessionTokens(self.access_tokens, self.refresh_tokens, self.clock, self.ids, policy)

    def start_generation(
        self, *, policy: GenerationPolicy | None = None, limits: RateLimitPolicy | None = None
    ) -> StartGeneration:
        return StartGeneration(
            catalog=self.catalog,
            providers=self.providers,
            billing=self.billing,
            open_runs=self.open_runs,
            clock=self.clock,
            ids=self.ids,
            policy=policy or GenerationPolicy(),
            quotas=Quotas(self.rate_limiter, limits or RateLimitPolicy(), self.clock),
            metrics=self.metrics,
            health=self.health,
            routing_metrics=self.routing_metrics,
        )

    async def generation(
        self, user: User, model: str = "m1", *, api_key: str | None = None, fails: bool = False
    ) -> UUID:
        """A generation of `user` on `model`, settled and its request ended: 4 prompt and 2 completion tokens, or
        an upstream failure after one relayed token. The clock then moves a second, to order the next one."""
        self.provider.scripts = [
            [TextDelta("partial", tokens=1), UpstreamError("gone")]
            if fails
            else [TextDelta("Hello", tokens=1), TextDelta(" there", tokens=1), UsageReport(4, 2)]
        ]
        order = Order(Principal(user.id, user.role, api_key), model, [ChatMessage("user", "a b c")])
        run = await self.start_generation()(order)
        await run.outcome()
        await self.open_runs.close_all()
        self.clock.advance(timedelta(seconds=1))
        return run.generation_id

    def balance(self, user_id: UUID) -> Credits:
        """The committed balance, checked against its ledger (a wallet is the sum of its rows) and its reserve
        against the running generations (each holds what its settlement releases)."""
        tables = self.db.committed
        wallet = tables.wallets[user_id]
        rows = sum((e.amount for e in tables.ledger if e.user_id == user_id), Credits.zero())
        assert wallet.balance == rows, f"wallet {wallet.balance} != sum of its ledger rows {rows}"
        running = [
            g
            for g in tables.generations.values()
            if g.generation.user_id == user_id and g.generation.status is GenerationStatus.RUNNING
        ]
        held = sum((g.wallet_reserved for g in running), Credits.zero())
        assert wallet.reserved == held, f"wallet reserve {wallet.reserved} != held by running generations {held}"
        return wallet.balance
