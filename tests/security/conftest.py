from tests.deals.conftest import connections, no_rate_limits  # noqa: F401  (fixtures)
