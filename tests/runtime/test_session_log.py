"""Session log lines carry their context: tunnel, session, user, in the text and as record attributes."""

from __future__ import annotations

import logging

from fastl2tp.runtime.node import SessionLog


def test_context_in_front_and_as_attributes(caplog):
    slog = SessionLog(logging.getLogger("fastl2tp.test"), 7, 12)
    with caplog.at_level(logging.INFO, logger="fastl2tp.test"):
        slog.info("authenticating")
        slog.set_user("ex%s 100%")  # a user name is data, never a format string
        slog.info("link down: %s", "idle timeout")
    first, second = caplog.records
    assert first.getMessage() == "tunnel=7 session=12: authenticating"
    assert second.getMessage() == "tunnel=7 session=12 user=ex%s 100%: link down: idle timeout"
    assert (second.tunnel, second.session, second.user) == (7, 12, "ex%s 100%")
