"""Test-wide plugins: the network-namespace fixture (tests/netns.py) for the tests that need one."""

pytest_plugins = ["tests.netns"]
