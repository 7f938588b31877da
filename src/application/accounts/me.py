from application.ports.persistence import PageRequest, UserRepository, WalletLedger
from application.ports.security import IdentityProvider, InvalidToken
from application.views import BalanceView, TransactionPage, UserView


class GetMe:
    """The caller's account, with its balance."""

    def __init__(self, identity: IdentityProvider, users: UserRepository) -> None:
        self._identity = identity
        self._users = users

    async def __call__(self) -> UserView:
        principal = await self._identity.current()
        account = await self._users.account(principal.user_id)
        if account is None:
            raise InvalidToken
        return UserView.of(account)


class GetMyBalance:
    """The caller's balance in credits."""

    def __init__(self, get_me: GetMe) -> None:
        self._get_me = get_me

    async def __call__(self) -> BalanceView:
        return BalanceView(balance=(await self._get_me()).balance)


class ListMyTransactions:
    """The caller's ledger, newest first: every change of the balance, one row each."""

    def __init__(self, identity: IdentityProvider, ledger: WalletLedger) -> None:
        self._identity = identity
        self._ledger = ledger

    async def __call__(self, page: PageRequest) -> TransactionPage:
        principal = await self._identity.current()
        return TransactionPage.of(await self._ledger.entries(principal.user_id, page))
