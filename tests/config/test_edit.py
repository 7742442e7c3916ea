"""Editing the configuration file's text (config/edit.py ``ConfigDocument``) the way the control socket
does: the user's comments and the layout of what a change does not touch survive; a change the loader
refuses leaves the text (and the file) as it was."""

from __future__ import annotations

import asyncio
import difflib
import os
import stat

import pytest

from fastl2tp.config import load_text
from fastl2tp.config import model as m
from fastl2tp.config.edit import ConfigDocument
from fastl2tp.ctl.protocol import CtlError, Request
from fastl2tp.errors import ConfigError

USER_FILE = """\
# fastl2tp on the office router
# maintained by ops -- do not remove these lines

[l2tp-server.server]
enabled = true   # turned on for the branch office
authentication = "mschap2"

# the users
[[ppp.secret]]
name = "ex"          # the laptop
password = "lkjrht"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"

[[ppp.secret]]
name = "other"
password = "x"
# end of the users

# the branch dials us back
[[l2tp-client]]
name = "out1"
connect-to = "192.0.2.1"
user = "u"
password = "p"
"""


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    gone, new = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            gone.append(line[2:])
        elif line.startswith("+ "):
            new.append(line[2:])
    return gone, new


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_setting_a_value_changes_only_its_line():
    doc = ConfigDocument(USER_FILE)
    doc.set(("ppp", "secret"), {"password": "new"}, 1)
    gone, new = changed_lines(USER_FILE, doc.text())
    assert (gone, new) == (['password = "x"'], ['password = "new"'])
    assert doc.load().ppp.secret[1].password == "new"


def test_setting_a_commented_value_keeps_its_comment():
    doc = ConfigDocument(USER_FILE)
    doc.set(("l2tp-server", "server"), {"enabled": False})
    text = doc.text()
    assert "# turned on for the branch office" in text
    assert not doc.load().l2tp_server.server.enabled
    gone, new = changed_lines(USER_FILE, text)
    assert len(gone) == len(new) == 1 and "enabled = false" in new[0]


def test_removing_an_item_removes_only_its_lines():
    doc = ConfigDocument(USER_FILE)
    doc.remove(("ppp", "secret"), 0)
    text = doc.text()
    gone, new = changed_lines(USER_FILE, text)
    assert new == [] or new == [""]
    assert all(line.strip() == "" or "ex" in line or "lkjrht" in line or "10.0.103" in line or
               line == "[[ppp.secret]]" for line in gone), gone
    for comment in ("# fastl2tp on the office router", "# end of the users", "# the branch dials us back"):
        assert comment in text
    assert [s.name for s in doc.load().ppp.secret] == ["other"]


def test_adding_an_item_keeps_every_line_of_the_file():
    doc = ConfigDocument(USER_FILE)
    doc.add(("ppp", "secret"), {"name": "third", "password": "3"})
    doc.add(("ip", "pool"), {"name": "pool1", "ranges": "10.0.0.0/24"})
    text = doc.text()
    assert is_subsequence(USER_FILE.splitlines(), text.splitlines())
    c = doc.load()
    assert [s.name for s in c.ppp.secret] == ["ex", "other", "third"] and c.ip.pool[0].name == "pool1"


def test_a_new_key_does_not_separate_a_comment_from_the_table_below_it():
    """The comment line right above ``[[ppp.secret]]`` belongs to it: a key added to the table before it
    must not be put between the two."""
    doc = ConfigDocument(USER_FILE)
    doc.set(("l2tp-server", "server"), {"keepalive-timeout": "10s"})
    lines = doc.text().splitlines()
    i = lines.index("# the users")
    assert lines[i + 1] == "[[ppp.secret]]", "\n".join(lines)
    assert doc.load().l2tp_server.server.keepalive_timeout == 10.0


def test_a_new_table_is_separated_from_the_next_one():
    doc = ConfigDocument(USER_FILE)
    doc.set(("ppp", "aaa"), {"accounting": False})
    text = doc.text()
    assert is_subsequence(USER_FILE.splitlines(), text.splitlines())
    assert doc.load().ppp.aaa.accounting is False


def test_none_removes_a_key_and_brings_back_the_default():
    doc = ConfigDocument(USER_FILE)
    doc.set(("l2tp-server", "server"), {"authentication": None})
    assert "authentication" not in doc.text()
    assert doc.load().l2tp_server.server.authentication == m.L2tpServer().authentication
    assert "# turned on for the branch office" in doc.text()


def test_the_text_round_trips_unchanged_without_changes():
    assert ConfigDocument(USER_FILE).text() == USER_FILE
    assert ConfigDocument("").text() == ""


def test_bad_toml_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        ConfigDocument("[l2tp-server.server\nenabled = true\n")
    assert "\n" not in str(info.value)


def test_remove_out_of_range_is_a_config_error():
    doc = ConfigDocument(USER_FILE)
    with pytest.raises(ConfigError):
        doc.remove(("ppp", "secret"), 5)
    with pytest.raises(ConfigError):
        doc.set(("ip", "pool"), {"name": "x"}, 0)
    assert doc.text() == USER_FILE


def test_add_after_removing_the_last_item():
    doc = ConfigDocument(USER_FILE)
    doc.remove(("l2tp-client",), 0)
    after_remove = doc.text()
    assert load_text(after_remove).l2tp_client == ()
    doc = ConfigDocument(after_remove)  # the daemon reads its text again for the next change
    doc.add(("l2tp-client",), {"name": "out2", "connect-to": "192.0.2.9", "user": "u"})
    c = doc.load()
    assert [x.name for x in c.l2tp_client] == ["out2"]
    assert "# the branch dials us back" in doc.text()


def test_add_to_a_table_written_in_two_places():
    """``[[ppp.secret]]`` and ``[[ppp.l2tp-secret]]`` with other tables between them (TOML allows
    that): adding a profile or setting a built-in must still work."""
    text = (USER_FILE + '\n[[ip.pool]]\nname = "pool1"\nranges = "10.0.0.0/24"\n'
            '\n[[ppp.l2tp-secret]]\naddress = "192.0.2.0/24"\nsecret = "tunnel"\n')
    assert len(load_text(text).ppp.l2tp_secret) == 1
    doc = ConfigDocument(text)
    doc.add(("ppp", "profile"), {"name": "office", "only-one": True})
    assert [p.name for p in doc.load().ppp.profile if p.name == "office"] == ["office"]
    doc = ConfigDocument(text)
    c = load_text(text)
    i = next(i for i, p in enumerate(c.ppp.profile) if p.name == "default")
    doc.set(("ppp", "profile"), {"only-one": True}, i, c)
    assert next(p for p in doc.load().ppp.profile if p.name == "default").only_one is True
    doc = ConfigDocument(text)
    doc.set(("ppp", "aaa"), {"accounting": False})
    assert doc.load().ppp.aaa.accounting is False


def test_profiles_are_found_by_name_and_builtins_get_a_table():
    c = load_text(USER_FILE)
    names = [p.name for p in c.ppp.profile]
    doc = ConfigDocument(USER_FILE)
    doc.set(("ppp", "profile"), {"only-one": True}, names.index("default-encryption"), c)
    text = doc.text()
    assert is_subsequence(USER_FILE.splitlines(), text.splitlines())
    p = next(p for p in doc.load().ppp.profile if p.name == "default-encryption")
    assert p.only_one is True and p.use_encryption is m.UseEncryption.YES  # the built-in's other settings kept


# --- through the daemon's control server: a refused change changes nothing ------------------------


class FakeNode:
    """What CtlServer needs of a Node, without sockets."""

    def __init__(self, config):
        self.config = config
        self.sessions = {}
        self.pools = {}
        self.clients = []
        self.host_name = "testhost"
        self.reloads = []

    def reload(self, config):
        self.config = config
        self.reloads.append(config)


@pytest.fixture
def server(tmp_path):
    from fastl2tp.runtime.ctlserver import CtlServer

    path = tmp_path / "fastl2tpd.toml"
    path.write_text(USER_FILE)
    os.chmod(path, 0o640)
    node = FakeNode(load_text(USER_FILE))
    return CtlServer(node, path, tmp_path / "ctl.sock"), path, node


def ask(ctl, cmd, menu, items=(), **props):
    return asyncio.run(ctl.handle(Request(cmd, menu, tuple(items), {k.replace("_", "-"): x for k, x in props.items()})))


def test_a_change_through_the_server_is_written_with_the_comments(server):
    ctl, path, node = server
    ask(ctl, "set", "/ppp/secret", ["ex"], routes="10.150.1.0/24 10.0.103.2 1")
    text = path.read_text()
    assert text == ctl.text
    assert "# the laptop" in text and "# maintained by ops -- do not remove these lines" in text
    assert load_text(text) == node.config and len(node.reloads) == 1
    assert str(node.config.ppp.secret[0].routes[0].dst) == "10.150.1.0/24"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file's mode is kept
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("cmd,menu,items,props", [
    ("add", "/ppp/secret", (), {"name": "ex", "password": "dup"}),  # duplicate: the loader refuses
    ("set", "/ppp/secret", ("0",), {"profile": "nosuch"}),  # no such profile
    ("set", "/ppp/secret", ("0",), {"local-address": "10.0.103.300"}),  # bad value
    ("set", "/ppp/secret", ("0",), {"colour": "blue"}),  # unknown property
    ("remove", "/ppp/secret", ("7",), {}),  # no such item
    ("remove", "/ppp/profile", ("default",), {}),  # built-in
    ("add", "/interface/l2tp-server", (), {"name": "in1", "user": "nobody"}),  # no such secret
])
def test_a_refused_change_leaves_the_text_and_the_file_unchanged(server, cmd, menu, items, props):
    ctl, path, node = server
    before_stat = path.stat()
    with pytest.raises((CtlError, ConfigError)) as info:
        asyncio.run(ctl.handle(Request(cmd, menu, tuple(items), dict(props))))
    assert "\n" not in str(info.value)
    assert ctl.text == USER_FILE and path.read_text() == USER_FILE
    assert path.stat().st_ino == before_stat.st_ino  # not even rewritten
    assert node.reloads == []
