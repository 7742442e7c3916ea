"""``[metrics]``: the Prometheus endpoint's address loads, is checked, dumps and loads back, and the
``address:port`` kind (``values.OptHostPort``) says what is wrong in one line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.config import Config, check, dump, load_text, parse_setting
from fastl2tp.config.model import Metrics
from fastl2tp.config.values import BadValue, OptHostPort, format_host_port, parse_host_port
from fastl2tp.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_off_by_default_and_not_written():
    assert Config().metrics == Metrics() and Metrics().listen is None
    assert "[metrics]" not in dump(Config())
    assert load_text("[metrics]\n").metrics.listen is None
    assert load_text('[metrics]\nlisten = ""\n').metrics.listen is None


@pytest.mark.parametrize("raw,canonical", [
    ("127.0.0.1:9117", "127.0.0.1:9117"),
    (" 0.0.0.0:80 ", "0.0.0.0:80"),
    ("[::1]:9117", "[::1]:9117"),
    ("[0:0::1]:09117", "[::1]:9117"),  # canonical text: compressed IPv6, no leading zeros
    ("[2001:DB8::1]:65535", "[2001:db8::1]:65535"),
    ("[fe80::1%eth0]:1", "[fe80::1%eth0]:1"),
])
def test_listen_round_trips(raw, canonical):
    config = load_text(f'[metrics]\nlisten = "{raw}"\n')
    assert config.metrics.listen == canonical
    text = dump(config)
    assert f'[metrics]\nlisten = "{canonical}"' in text
    assert load_text(text) == config
    check(config)


@pytest.mark.parametrize("raw,message", [
    ('"localhost:9117"', ('metrics.listen: "localhost:9117": "localhost" is not an IPv4 address'
                          " (or an IPv6 address in brackets)")),
    ('"::1:9117"', 'metrics.listen: "::1:9117": write an IPv6 address in brackets, like "[::1]:9117"'),
    ('"[1.2.3.4]:9117"', 'metrics.listen: "[1.2.3.4]:9117": "1.2.3.4" is not an IPv6 address'),
    ('"127.0.0.1"', 'metrics.listen: "127.0.0.1" is not "address:port" (like "127.0.0.1:9117" or "[::1]:9117")'),
    ('"[::1]"', 'metrics.listen: "[::1]" is not "address:port"'),
    ('"127.0.0.1:0"', 'metrics.listen: "127.0.0.1:0": port "0" is not an integer 1..65535'),
    ('"127.0.0.1:65536"', 'metrics.listen: "127.0.0.1:65536": port "65536" is not an integer 1..65535'),
    ('"127.0.0.1:-1"', 'metrics.listen: "127.0.0.1:-1": port "-1" is not an integer 1..65535'),
    ("9117", 'metrics.listen: 9117 is not "address:port"'),
    ("true", 'metrics.listen: true is not "address:port"'),
])
def test_bad_listen_is_one_clear_line(raw, message):
    with pytest.raises(ConfigError) as info:
        load_text(f"[metrics]\nlisten = {raw}\n")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unknown_key_and_wrong_shape():
    with pytest.raises(ConfigError, match=r'^metrics: unknown key "port" \(known: listen\)$'):
        load_text("[metrics]\nport = 9117\n")
    with pytest.raises(ConfigError, match=r"^metrics: must be a table \(\[metrics\]\)"):
        load_text('metrics = "127.0.0.1:9117"\n')


def test_check_refuses_a_code_made_value_that_is_not_canonical():
    good = dataclasses.replace(Config(), metrics=Metrics(listen="[::1]:9117"))
    check(good)
    for bad in ("[0::1]:9117", "127.0.0.1", "localhost:80"):
        with pytest.raises(ConfigError, match=r"^metrics\.listen: "):
            check(dataclasses.replace(Config(), metrics=Metrics(listen=bad)))


def test_parse_setting_for_the_cli():
    assert parse_setting(Metrics, "listen", "10.0.0.1:9117", "metrics") == "10.0.0.1:9117"
    with pytest.raises(ConfigError, match=r"^metrics\.listen: "):
        parse_setting(Metrics, "listen", "10.0.0.1:x", "metrics")


def test_check_config_cli_accepts_it(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[metrics]\nlisten = "127.0.0.1:9117"\n')
    bad.write_text('[metrics]\nlisten = "127.0.0.1:99999"\n')
    ok = subprocess.run([sys.executable, "-m", "fastl2tp", "check-config", str(good)], capture_output=True, text=True,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    no = subprocess.run([sys.executable, "-m", "fastl2tp", "check-config", str(bad)], capture_output=True, text=True,
                        check=False)
    assert no.returncode == 1
    assert no.stderr.strip() == (f'{bad}: metrics.listen: "127.0.0.1:99999": port "99999" is not an integer 1..65535')


ports = st.integers(1, 65535)
addresses = st.integers(0, 2**32 - 1).map(IPv4Address) | st.integers(0, 2**128 - 1).map(IPv6Address)


@given(addresses, ports)
def test_host_port_text_inverts(address, port):
    text = format_host_port(address, port)
    assert parse_host_port(text) == (address, port)
    assert OptHostPort().parse(OptHostPort().dump(text)) == text


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_bad_value(raw):
    try:
        value = OptHostPort().parse(raw)
    except BadValue as exc:
        assert "\n" not in str(exc)
    else:
        assert value is None or OptHostPort().parse(value) == value


def test_docs_list_the_key():
    assert "### `[metrics]`" in DOCS.read_text()
    assert "| `listen` |" in DOCS.read_text()
