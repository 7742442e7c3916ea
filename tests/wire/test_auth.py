"""PAP/CHAP/MS-CHAP codecs (fastl2tp.wire.auth): known packets, quirks, inverse property, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError
from fastl2tp.wire.auth import (
    AuthMethod,
    ChapChallenge,
    ChapCode,
    ChapResponse,
    ChapStatus,
    MsChap1Response,
    MsChap2Response,
    MsChap2Success,
    MsChapFailure,
    PapCode,
    PapReply,
    PapRequest,
    decode_chap,
    decode_mschap1_response,
    decode_mschap2_response,
    decode_pap,
    encode_chap,
    encode_mschap1_response,
    encode_mschap2_response,
    encode_pap,
    format_mschap2_success,
    format_mschap_failure,
    parse_mschap2_success,
    parse_mschap_failure,
)

h = bytes.fromhex


def test_auth_method_unchanged():
    assert AuthMethod.from_lcp_data(AuthMethod.MSCHAP2.lcp_data) is AuthMethod.MSCHAP2
    assert AuthMethod.PAP.lcp_data == h("c023")


# --- PAP ---


def test_pap_request_from_pppd():
    pkt = decode_pap(h("0101000e026578066c6b6a726874"))
    assert pkt == PapRequest(1, b"ex", b"lkjrht")
    assert encode_pap(pkt) == h("0101000e026578066c6b6a726874")
    assert "lkjrht" not in repr(pkt)


def test_pap_ack_with_and_without_msg_length():
    assert decode_pap(h("0201000d084c6f67696e206f6b")) == PapReply(PapCode.AUTHENTICATE_ACK, 1, b"Login ok")
    assert decode_pap(h("02030004")) == PapReply(PapCode.AUTHENTICATE_ACK, 3, b"")  # SoftEther
    assert decode_pap(h("03030004")) == PapReply(PapCode.AUTHENTICATE_NAK, 3, b"")
    assert encode_pap(PapReply(PapCode.AUTHENTICATE_ACK, 3, b"")) == h("0203000500")


def test_pap_padding_after_length_is_ignored():
    assert decode_pap(h("02030004") + b"\0\0") == PapReply(PapCode.AUTHENTICATE_ACK, 3, b"")


@pytest.mark.parametrize(
    "data",
    [
        "",
        "0101",
        "010100",
        "01010003",  # length below 4
        "0101000f026578066c6b6a726874",  # length past the end
        "0101000e106578066c6b6a726874",  # peer-id length past Length
        "0101000e026578ff6c6b6a726874",  # password length past Length
        "0201000509",  # message length past Length
        "04010004",  # unknown code
    ],
)
def test_pap_malformed(data):
    with pytest.raises(DecodeError):
        decode_pap(h(data))


# --- CHAP ---


def test_chap_packets_from_pppd():
    challenge = h("01b2001b10fbb442a716cc7ce2b0686c59e1c2b78773742d6c6e73")
    pkt = decode_chap(challenge)
    assert pkt == ChapChallenge(0xB2, h("fbb442a716cc7ce2b0686c59e1c2b787"), b"st-lns")
    assert encode_chap(pkt) == challenge
    success = h("037d0012416363657373206772616e746564")
    assert decode_chap(success) == ChapStatus(ChapCode.SUCCESS, 0x7D, b"Access granted")
    assert encode_chap(decode_chap(success)) == success
    resp = h("027d001710e55a7df3061e7a31cc583e835c0b39c76578")
    assert decode_chap(resp) == ChapResponse(0x7D, h("e55a7df3061e7a31cc583e835c0b39c7"), b"ex")


@pytest.mark.parametrize(
    "data",
    ["", "01", "010100", "01010003", "0101000610", "01010005ff", "05010004", "07010004", "0101ffff10"],
)
def test_chap_malformed(data):
    with pytest.raises(DecodeError):
        decode_chap(h(data))


def test_encode_rejects_bad_fields():
    with pytest.raises(ValueError):
        encode_chap(ChapChallenge(256, b"x"))
    with pytest.raises(ValueError):
        encode_chap(ChapChallenge(1, b"x" * 256))
    with pytest.raises(ValueError):
        encode_pap(PapRequest(1, b"x" * 256, b""))
    with pytest.raises(ValueError):
        encode_chap(ChapStatus(ChapCode.CHALLENGE, 1))  # type: ignore[arg-type]


# --- MS-CHAP values and messages ---


def test_mschap2_response_value():
    value = h(
        "d15bf11366e9b06c129f70110d5bb5790000000000000000cc95321d4cd48170397148175c8b9625d6f75693e8e2a66f00"
    )
    resp = decode_mschap2_response(value)
    assert resp.peer_challenge == h("d15bf11366e9b06c129f70110d5bb579")
    assert resp.nt_response == h("cc95321d4cd48170397148175c8b9625d6f75693e8e2a66f")
    assert resp.flags == 0 and resp.reserved == bytes(8)
    assert encode_mschap2_response(resp) == value


def test_mschap1_response_value():
    value = bytes(24) + h("f093be93b100883af4643d09f894806a9e9c7c00da07fed7") + b"\x01"
    resp = decode_mschap1_response(value)
    assert resp.use_nt and resp.lm_response == bytes(24)
    assert encode_mschap1_response(resp) == value
    for bad in (value[:-1], value + b"\0"):
        with pytest.raises(DecodeError):
            decode_mschap1_response(bad)
        with pytest.raises(DecodeError):
            decode_mschap2_response(bad)


def test_failure_messages():
    f = parse_mschap_failure(b"E=691 R=0 C=FA24E1A9BC33AA1E2EF12F9DCF4E3AFF V=3")
    assert f == MsChapFailure(691, False, h("FA24E1A9BC33AA1E2EF12F9DCF4E3AFF"), 3, None)
    assert format_mschap_failure(f) == b"E=691 R=0 C=FA24E1A9BC33AA1E2EF12F9DCF4E3AFF V=3"
    assert f.reason == "E=691 authentication failure"
    v1 = parse_mschap_failure(b"E=691 R=1 C=1e189df473f3d28f V=0")  # pppd's v1 form, lower-case hex
    assert v1 == MsChapFailure(691, True, h("1e189df473f3d28f"), 0)
    assert parse_mschap_failure(b"E=648 R=0") == MsChapFailure(648, False)
    assert parse_mschap_failure(b"E=647") == MsChapFailure(647)
    m = parse_mschap_failure(b"E=691 R=1 C=00 V=3 M=Authentication failed: R=1 here is text")
    assert m.message == "Authentication failed: R=1 here is text" and m.retry is True
    assert m.reason == "E=691 authentication failure: Authentication failed: R=1 here is text"
    assert parse_mschap_failure(b"E=1 X=whatever  V=2").version == 2  # unknown fields skipped


@pytest.mark.parametrize(
    "text", [b"", b"R=0", b"E=abc", b"E=691 R=2", b"E=691 C=XYZ", b"E=691 C=123", b"E=691 V=x", b"E=\xd9\xa3"]
)
def test_failure_malformed(text):
    with pytest.raises(DecodeError):
        parse_mschap_failure(text)


def test_success_messages():
    s = parse_mschap2_success(b"S=534B18F85527920E621CDB088A9A12C9B439A9E2 M=Access granted")
    assert s == MsChap2Success(h("534B18F85527920E621CDB088A9A12C9B439A9E2"), "Access granted")
    assert format_mschap2_success(s) == b"S=534B18F85527920E621CDB088A9A12C9B439A9E2 M=Access granted"
    bare = parse_mschap2_success(b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6ED")  # SoftEther
    assert bare.message is None
    assert format_mschap2_success(bare) == b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6ED"
    assert parse_mschap2_success(b"S=d2e6561d28bc7abd71799caa6144fc8f91cbe6ed ").message is None


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"Access granted",
        b"S=",
        b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6E",  # 39 digits
        b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6EZ",
        b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6EDX",
        b"S=D2E6561D28BC7ABD71799CAA6144FC8F91CBE6ED X=1",
    ],
)
def test_success_malformed(text):
    with pytest.raises(DecodeError):
        parse_mschap2_success(text)


# --- properties ---

u8 = st.integers(0, 255)
short = st.binary(max_size=255)


@given(st.one_of(
    st.builds(PapRequest, u8, short, short),
    st.builds(PapReply, st.sampled_from([PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK]), u8, short),
))
def test_pap_roundtrip(pkt):
    assert decode_pap(encode_pap(pkt)) == pkt


@given(st.one_of(
    st.builds(ChapChallenge, u8, short, st.binary(max_size=300)),
    st.builds(ChapResponse, u8, short, st.binary(max_size=300)),
    st.builds(ChapStatus, st.sampled_from([ChapCode.SUCCESS, ChapCode.FAILURE]), u8, st.binary(max_size=300)),
))
def test_chap_roundtrip(pkt):
    assert decode_chap(encode_chap(pkt)) == pkt


@given(st.builds(MsChap1Response, st.binary(min_size=24, max_size=24), st.binary(min_size=24, max_size=24), u8))
def test_mschap1_response_roundtrip(resp):
    assert decode_mschap1_response(encode_mschap1_response(resp)) == resp


@given(st.builds(
    MsChap2Response,
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=24, max_size=24),
    u8,
    st.binary(min_size=8, max_size=8),
))
def test_mschap2_response_roundtrip(resp):
    assert decode_mschap2_response(encode_mschap2_response(resp)) == resp


@given(st.builds(
    MsChapFailure,
    st.integers(0, 9_999_999_999),
    st.none() | st.booleans(),
    st.none() | st.binary(max_size=16),
    st.none() | st.integers(0, 9_999_999_999),
    st.none() | st.text(),
))
def test_failure_roundtrip(f):
    assert parse_mschap_failure(format_mschap_failure(f)) == f


@given(st.builds(MsChap2Success, st.binary(min_size=20, max_size=20), st.none() | st.text()))
def test_success_roundtrip(s):
    assert parse_mschap2_success(format_mschap2_success(s)) == s


@given(st.binary(max_size=600))
def test_random_bytes_raise_only_decode_error(data):
    for decode in (
        decode_pap,
        decode_chap,
        decode_mschap1_response,
        decode_mschap2_response,
        parse_mschap_failure,
        parse_mschap2_success,
    ):
        try:
            decode(data)
        except DecodeError:
            pass


@given(st.text(alphabet="ERCVMS= 0123456789abcdefABCDEFxyz\u0663", max_size=80))
def test_token_soup_raises_only_decode_error(text):
    for parse in (parse_mschap_failure, parse_mschap2_success):
        try:
            parse(text.encode())
        except DecodeError:
            pass
