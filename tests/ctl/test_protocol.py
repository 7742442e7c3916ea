"""The control socket's wire format (ctl/protocol.py): round trips, and every malformed line is one
``CtlError`` with one line of text, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.ctl.protocol import (
    COMMANDS,
    MAX_LINE,
    VERSION,
    CtlError,
    Reply,
    Request,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)

text = st.text(max_size=20)
requests = st.builds(
    Request,
    cmd=st.sampled_from(sorted(COMMANDS)),
    menu=st.sampled_from(["/", "/ppp/secret", "/interface/l2tp-server/server"]) | text,
    items=st.lists(text, max_size=3).map(tuple),
    props=st.dictionaries(text, text, max_size=4),
    options=st.lists(st.sampled_from(["detail", "stats", "once", "show-sensitive"]), max_size=2).map(tuple),
    id=st.integers(0, 2**53),
)


def test_the_documented_example_decodes():
    line = (b'{"v": 1, "id": 7, "cmd": "set", "menu": "/ppp/secret", "items": ["ex"], '
            b'"props": {"routes": "10.150.1.0/24 10.0.103.2 1"}}\n')
    assert decode_request(line) == Request("set", "/ppp/secret", ("ex",), {"routes": "10.150.1.0/24 10.0.103.2 1"},
                                           (), 7)


def test_encoded_request_is_one_json_line():
    data = encode_request(Request("print", "/ppp/secret", options=("detail",), id=3))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    obj = json.loads(data)
    assert obj["v"] == VERSION and obj["cmd"] == "print" and obj["menu"] == "/ppp/secret"


@given(requests)
@settings(max_examples=200)
def test_request_round_trip(req):
    data = encode_request(req)
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    assert decode_request(data) == req


def test_numbers_as_items_are_accepted_as_text():
    assert decode_request(b'{"v":1,"cmd":"remove","menu":"/ppp/secret","items":[0,"ex"]}').items == ("0", "ex")


@given(st.integers(-2**31, 2**31), st.booleans(), st.text(max_size=40), st.none())
def test_reply_round_trip(rid, ok, txt, _):
    r = Reply(rid, ok, result={"text": txt} if ok else None, error="" if ok else txt)
    data = encode_reply(r)
    assert data.count(b"\n") == 1
    assert decode_reply(data) == r


def _one_line_error(line: bytes) -> str:
    with pytest.raises(CtlError) as info:
        decode_request(line)
    msg = str(info.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_any_bytes_give_a_request_or_a_ctl_error(data):
    try:
        decode_request(data)
    except CtlError as exc:
        assert "\n" not in str(exc)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=8)


@given(st.fixed_dictionaries({"v": st.just(1)}, optional={
    "id": json_values, "cmd": st.sampled_from(sorted(COMMANDS)) | json_values, "menu": json_values,
    "items": json_values, "props": json_values, "options": json_values}))
@settings(max_examples=500)
def test_any_json_object_gives_a_request_or_a_ctl_error(obj):
    try:
        req = decode_request(json.dumps(obj).encode())
    except CtlError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(req.menu, str) and all(isinstance(x, str) for x in req.items)
        assert all(isinstance(k, str) and isinstance(x, str) for k, x in req.props.items())


@pytest.mark.parametrize("version", [None, 0, 2, "1", 1.5, True])
def test_wrong_version_is_refused_naming_the_supported_one(version):
    obj = {"cmd": "print", "menu": "/ppp/secret"}
    if version is not None:
        obj["v"] = version
    msg = _one_line_error(json.dumps(obj).encode())
    assert "version" in msg and str(VERSION) in msg


def test_unknown_command_lists_the_known_ones():
    msg = _one_line_error(b'{"v":1,"cmd":"frobnicate","menu":"/ppp/secret"}')
    assert "frobnicate" in msg
    for c in ("print", "add", "set", "remove"):
        assert c in msg


def test_missing_command_is_refused():
    assert "command" in _one_line_error(b'{"v":1,"menu":"/ppp/secret"}')


@pytest.mark.parametrize("field,value,word", [
    ("id", "7", "id"), ("id", True, "id"), ("id", 1.5, "id"),
    ("menu", 5, "menu"), ("menu", ["/ppp"], "menu"),
    ("items", "0", "items"), ("items", [True], "items"), ("items", [[1]], "items"), ("items", {"a": 1}, "items"),
    ("props", ["a=b"], "props"), ("props", {"a": 1}, "props"), ("props", {"a": None}, "props"),
    ("options", "detail", "options"), ("options", [None], "options"),
])
def test_bad_types_name_the_field(field, value, word):
    obj = {"v": 1, "cmd": "print", "menu": "/ppp/secret", field: value}
    assert word in _one_line_error(json.dumps(obj).encode())


@pytest.mark.parametrize("line", [b"", b"\n", b"not json", b"[1,2]", b'"x"', b"1", b"null", b"\xff\xfe",
                                  b'{"v":1', b"{}"])
def test_not_a_request_object(line):
    _one_line_error(line)


def test_a_too_long_line_is_refused_without_parsing():
    assert str(MAX_LINE) in _one_line_error(b"x" * (MAX_LINE + 1))


@pytest.mark.parametrize("line", [b"", b"junk", b"[]", b'{"v":2,"ok":true}', b'{"v":1,"ok":"yes"}'])
def test_bad_replies_are_one_line_errors(line):
    with pytest.raises(CtlError) as info:
        decode_reply(line)
    assert "\n" not in str(info.value)
