"""Domain and application policy: the operator-set rules, each built from its settings group."""

from datetime import timedelta

from dishka import Provider, Scope, provide

from application.accounts.policy import AccountPolicy
from application.comparison.texts import ReferenceStorage
from application.generations.housekeeping import HousekeepingPolicy
from application.generations.run import GenerationPolicy
from application.limits.quota import RateLimitPolicy
from domain.credits import Credits
from domain.routing import BreakerPolicy
from entrypoints.settings import AccountSettings, HousekeepingSettings, RateLimitSettings, RoutingSettings


class PolicyProvider(Provider):
    scope = Scope.APP

    @provide
    def account_policy(self, accounts: AccountSettings) -> AccountPolicy:
        return AccountPolicy(
            signup_credits=Credits.parse(accounts.signup_credits),
            login_failure_limit=accounts.login_failure_limit,
            registrations_per_hour=accounts.registrations_per_hour,
        )

    @provide
    def reference_storage(self, accounts: AccountSettings) -> ReferenceStorage:
        return ReferenceStorage(bytes_per_user=accounts.reference_storage_bytes_per_user)

    @provide
    def rate_limit_policy(self, limits: RateLimitSettings) -> RateLimitPolicy:
        return RateLimitPolicy(
            user_rpm=limits.user_rpm, key_rpm=limits.key_rpm, user_tpm=limits.user_tpm, key_tpm=limits.key_tpm
        )

    @provide
    def generation_policy(self, housekeeping: HousekeepingSettings) -> GenerationPolicy:
        return GenerationPolicy(lease=timedelta(seconds=housekeeping.generation_lease_seconds))

    @provide
    def housekeeping_policy(self, housekeeping: HousekeepingSettings) -> HousekeepingPolicy:
        return HousekeepingPolicy(reference_retention=timedelta(days=housekeeping.reference_retention_days))

    @provide
    def breaker_policy(self, routing: RoutingSettings) -> BreakerPolicy:
        return BreakerPolicy(
            failures=routing.breaker_failures,
            cooldown=timedelta(seconds=routing.breaker_cooldown_seconds),
            max_retry_after=timedelta(seconds=routing.max_retry_after_seconds),
        )
