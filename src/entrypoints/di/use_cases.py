"""Application use cases: per request for the HTTP routes and the commands; per process for what runs beside them
(the background sweeps, the rate limit quotas)."""

from dishka import Provider, Scope, provide, provide_all

from application.accounts.authenticate import Authenticate
from application.accounts.create_admin import CreateAdmin
from application.accounts.login import LoginUser
from application.accounts.me import GetMe, GetMyBalance, ListMyTransactions
from application.accounts.refresh import Logout, RefreshSession
from application.accounts.register import RegisterUser
from application.accounts.sessions import SessionTokens
from application.admin.balance import AdjustBalance
from application.admin.dashboard import GetDashboard
from application.admin.deployments import ListDeployments
from application.admin.usage import GetUsage
from application.admin.users import GetUser, ListUserGenerations, ListUsers, ListUserTransactions, UpdateUser
from application.catalog.use_cases import (
    AdminListModels,
    CreateModel,
    DeleteModel,
    GetModel,
    ListModels,
    ListOpenAIModels,
    UpdateModel,
)
from application.comparison.billing import GetKeyBilling, GetKeysActivity
from application.comparison.key_login import KeyLogin
from application.comparison.keys import CreateKey, GetKey, ListKeys, RevokeKey, UpdateKey
from application.comparison.rotate_secrets import ReencryptSecrets
from application.comparison.subscription import GetSubscription
from application.comparison.texts import CompareText, CreateReference, KeyContext
from application.comparison.typeids import CreateTypeId, DeleteTypeId, GetTypeId, ListTypeIds, ReplaceTypeId
from application.generations.anthropic_messages import AnthropicMessages, CountMessageTokens
from application.generations.create import CreateGeneration
from application.generations.housekeeping import PurgeExpiredRecords
from application.generations.openai_chat import CreateChatCompletion
from application.generations.queries import GetGeneration, InspectGeneration, ListGenerations, SearchGenerations
from application.generations.reaper import ReapExpiredGenerations
from application.generations.routing import DeploymentHealth
from application.generations.start import StartGeneration
from application.health.check_readiness import CheckReadiness
from application.limits.quota import Quotas
from application.ports.clock import Clock
from application.ports.metrics import RoutingMetrics
from domain.routing import BreakerPolicy


class UseCaseProvider(Provider):
    scope = Scope.REQUEST

    per_process = provide_all(ReapExpiredGenerations, PurgeExpiredRecords, Quotas, scope=Scope.APP)

    @provide(scope=Scope.APP)
    def deployment_health(self, clock: Clock, policy: BreakerPolicy, metrics: RoutingMetrics) -> DeploymentHealth:
        return DeploymentHealth(clock, policy, metrics)

    use_cases = provide_all(
        CheckReadiness,
        Authenticate,
        SessionTokens,
        RegisterUser,
        LoginUser,
        RefreshSession,
        Logout,
        GetMe,
        GetMyBalance,
        ListMyTransactions,
        ListUsers,
        GetUser,
        UpdateUser,
        ListUserTransactions,
        ListUserGenerations,
        AdjustBalance,
        GetUsage,
        GetDashboard,
        ListModels,
        ListOpenAIModels,
        AdminListModels,
        GetModel,
        CreateModel,
        UpdateModel,
        DeleteModel,
        StartGeneration,
        ListDeployments,
        CreateGeneration,
        CreateChatCompletion,
        AnthropicMessages,
        CountMessageTokens,
        ListGenerations,
        GetGeneration,
        SearchGenerations,
        InspectGeneration,
        CreateTypeId,
        ListTypeIds,
        GetTypeId,
        ReplaceTypeId,
        DeleteTypeId,
        CreateKey,
        ListKeys,
        GetKey,
        UpdateKey,
        RevokeKey,
        GetSubscription,
        KeyLogin,
        KeyContext,
        CreateReference,
        CompareText,
        GetKeyBilling,
        GetKeysActivity,
    )


class CommandLineProvider(Provider):
    scope = Scope.REQUEST

    use_cases = provide_all(CreateAdmin, ReencryptSecrets)
