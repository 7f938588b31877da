import warnings

from litestar.exceptions import LitestarDeprecationWarning

from entrypoints.http.app import create_app
from tests.support.settings import suite_settings


def test_every_route_declares_its_parameters_and_body_as_litestar_3_reads_them() -> None:
    """Inferred path/query parameters and an unmarked `data` warn now and stop working in Litestar 3."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", LitestarDeprecationWarning)
        create_app(suite_settings("postgresql://postgres@127.0.0.1:9/never-connected"))
