"""redis-py without importlib.metadata: ~2 MB less in each service that talks to Redis.

redis-py 8 imports importlib.metadata at module level (redis/utils.py) for one use: the version
it names itself by in CLIENT SETINFO, looked up when a connection is made without a DriverInfo.
So redis-py is imported with it deferred (shared/lean_import.py) and our clients pass DRIVER_INFO,
the same name and version (redis-py's own `__version__`), so the lookup never runs. A client
made without it still works: importlib.metadata is then loaded on its first connection.

A service package's __init__ imports this module, so it runs before any of the package's
modules imports redis-py (imported first elsewhere, redis-py brings importlib.metadata in).
tests/test_import_footprint.py checks the services keep it out, with a connection made.
"""

from __future__ import annotations

from shared.lean_import import deferred

with deferred(("importlib.metadata",)):
    import redis
    import redis.asyncio  # noqa: F401

from redis.driver_info import DriverInfo  # noqa: E402

DRIVER_INFO = DriverInfo(lib_version=redis.__version__)
