import warnings

from litestar.exceptions import LitestarDeprecationWarning

from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.conftest import TEST_JWT_SECRET, TEST_SECRET_KEYS


def test_every_route_declares_its_parameters_and_body_as_litestar_3_reads_them() -> None:
    """Inferred path/query parameters and an unmarked `data` warn now and stop working in Litestar 3."""
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:9/never-connected",
        jwt_secret=TEST_JWT_SECRET,
        secret_keys=TEST_SECRET_KEYS,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", LitestarDeprecationWarning)
        create_app(settings)
