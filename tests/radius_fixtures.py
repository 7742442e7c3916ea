"""pytest fixtures for a real FreeRADIUS (``tests/radius_server.py``).

Register with the root conftest.py (``pytest_plugins = ["tests.netns", "tests.radius_fixtures"]``),
or import the fixture into a test module (``from tests.radius_fixtures import freeradius  # noqa: F401``).

    from tests.radius_server import RadiusUser

    def test_login(netns, freeradius):
        lns = netns.new("lns")
        radius = freeradius(
            [RadiusUser("alice", "pw", reply={"Framed-IP-Address": "10.9.0.2", "Session-Timeout": 3600})],
            clients=[("127.0.0.1", "testing123")], ns=lns)          # 127.0.0.1:1812/1813 inside lns
        backup = freeradius([...], clients=[...], ns=lns, auth_port=11812, acct_port=11813)
        ...
        starts = radius.wait_detail(lambda r: r["Acct-Status-Type"] == "Start")

``freeradius(users, clients=..., address=..., auth_port=..., acct_port=..., ns=..., name=...)``
writes a configuration under the test's ``tmp_path`` (``<tmp_path>/<name>/``: ``freeradius.log``,
``detail``), starts the server, waits until it is ready and returns the ``FreeRadius``. Every server
the factory started is stopped by PID when the test ends, pass or fail. Without ``freeradius``
installed the test FAILS (it does not skip) with a message naming the Debian packages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.radius_server import FreeRadius, RadiusClient, RadiusUser, missing_programs

DEFAULT_SECRET = "testing123"


@pytest.fixture
def freeradius(tmp_path) -> Iterator[Callable[..., FreeRadius]]:
    """A factory of running FreeRADIUS servers for this test (see the module docstring)."""
    msg = missing_programs()
    if msg:
        pytest.fail(msg, pytrace=False)
    servers: list[FreeRadius] = []

    def start(users: Sequence[RadiusUser], *, clients: Sequence[RadiusClient | tuple[str, str]] = (),
              address: str = "127.0.0.1", auth_port: int = 1812, acct_port: int = 1813,
              ns: Any = None, name: str | None = None, **kwargs: Any) -> FreeRadius:
        if not clients:
            clients = [RadiusClient("127.0.0.1", DEFAULT_SECRET)]
        server = FreeRadius(tmp_path / (name or f"radius{len(servers) + 1}"), list(users), list(clients),
                            address=address, auth_port=auth_port, acct_port=acct_port, ns=ns, **kwargs)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        errors = []
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as e:  # noqa: BLE001 - stop the others, then report
                errors.append(f"{server.where()}: {e!r}")
        if errors:
            raise AssertionError("stopping FreeRADIUS failed: " + "; ".join(errors))
