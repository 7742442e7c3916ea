"""Test-wide plugins: the network-namespace fixture (tests/netns.py) and the FreeRADIUS server factory
(tests/radius_fixtures.py) for the tests that need them."""

pytest_plugins = ["tests.netns", "tests.radius_fixtures"]
