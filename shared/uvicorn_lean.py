"""uvicorn's Config and Server without `uvicorn/__init__.py`: ~1.4 MB less in the dashboard.

uvicorn's __init__ imports its command line (uvicorn/main.py: click, and multiprocessing for its
workers), which a server run from code never uses. The package is registered without running
its __init__ (shared/lean_import.py), Config and Server are imported from their modules and put
on the package, where uvicorn's own lifespan module looks for Config; any other name of
`uvicorn` (run, main) runs the __init__ then and is there as always. tests/test_import_footprint.py
checks the dashboard runs without click; the web tests run the real server.
"""

from __future__ import annotations

from shared.lean_import import package_without_init

uvicorn = package_without_init("uvicorn")

from uvicorn.config import Config  # noqa: E402
from uvicorn.server import Server  # noqa: E402

if "Config" not in vars(uvicorn):  # its __init__ has not run (it gives the same two)
    uvicorn.Config, uvicorn.Server = Config, Server

__all__ = ["Config", "Server"]
