"""AVP and control-message codec (RFC 2661 §4, §6): table, hiding, round trips, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError, LocalUsageError
from fastl2tp.wire import avp as A
from fastl2tp.wire.avp import (
    AVP_TABLE,
    Accm,
    Avp,
    AvpType,
    CallErrors,
    ControlMessage,
    HiddenValue,
    MessageType,
    PppDisconnectCause,
    Q931Cause,
    ResultCode,
    avp,
    decode_avps,
    decode_message,
    encode_avps,
    encode_message,
    hide_value,
    make_message,
    missing_avps,
    unhide_value,
    unknown_mandatory,
    with_random_vector,
)


def test_every_rfc2661_avp_is_in_the_table():
    assert set(AVP_TABLE) == {t.value for t in AvpType}
    # §4.4: 20 is reserved; 0..39 are RFC 2661, 46 is RFC 3145
    assert set(range(40)) - {20} <= set(AVP_TABLE)


def test_result_code_of_8_bytes_as_routeros_sends_it():
    raw = bytes.fromhex("8008 0000 0001 0002")  # M, len 8, result 2, no error code
    (a,) = decode_avps(raw)
    assert a.value == ResultCode(2)
    assert encode_avps([a]) == raw


def test_result_code_with_error_and_message():
    a = avp(AvpType.RESULT_CODE, ResultCode(2, 6, b"oops"))
    (b,) = decode_avps(encode_avps([a]))
    assert b == a


def test_softether_stopccn_result_code_decodes():
    # SoftEther: result 0, error 0x0600 and four NUL bytes as "message" (traces/softether/README.md)
    raw = bytes.fromhex("800e 0000 0001 0000 0600 00000000")
    (a,) = decode_avps(raw)
    assert a.value == ResultCode(0, 0x0600, b"\0\0\0\0")


def test_vendor_avp_of_type_2_is_not_protocol_version():
    raw = bytes.fromhex("0009 0137 0002 616263")  # vendor 311 (Microsoft), type 2, 3 bytes
    (a,) = decode_avps(raw)
    assert a.vendor_id == 311 and a.attr_type == 2 and a.value == b"abc"
    assert not a.known
    assert encode_avps([a]) == raw


def test_unknown_avp_without_m_is_kept_and_ignored_with_m_is_flagged():
    msg = ControlMessage(1, 0, 0, 0, make_message(MessageType.HELLO, Avp(200, b"x", mandatory=False)))
    back = decode_message(encode_message(msg))
    assert back == msg
    assert unknown_mandatory(back) is None
    msg2 = ControlMessage(1, 0, 0, 0, make_message(MessageType.HELLO, Avp(200, b"x", mandatory=True)))
    assert unknown_mandatory(decode_message(encode_message(msg2))).attr_type == 200


def test_reserved_bits_make_an_avp_unrecognized_and_round_trip():
    raw = bytes.fromhex("8408 0000 0009 0001")  # M + a reserved bit on Assigned Tunnel ID
    (a,) = decode_avps(raw)
    assert not isinstance(a.value, int)
    msg = ControlMessage(1, 0, 0, 0, make_message(MessageType.HELLO) + (a,))
    assert unknown_mandatory(msg) is a
    assert encode_avps([a]) == raw


def test_hidden_avp_round_trip_and_rfc_construction():
    secret, rv = b"tunnel-secret", bytes(range(16))
    value = (0x1234).to_bytes(2, "big")
    hidden = hide_value(AvpType.ASSIGNED_SESSION_ID, value, secret, rv)
    assert len(hidden) == 4
    assert unhide_value(AvpType.ASSIGNED_SESSION_ID, hidden, secret, rv) == value
    # first 16-byte block: MD5(type, secret, RV) xor (length || value)
    import hashlib

    b1 = hashlib.md5(b"\x00\x0e" + secret + rv).digest()
    assert hidden == bytes(x ^ y for x, y in zip(b"\x00\x02" + value, b1))


def test_hidden_values_longer_than_one_block_chain_correctly():
    secret, rv = b"s", b"\x01\x02\x03\x04"
    value = bytes(range(100))
    assert unhide_value(7, hide_value(7, value, secret, rv, padding=b"\xaa" * 5), secret, rv) == value


def test_hidden_avp_in_a_message_needs_secret_and_random_vector():
    rng = iter(range(1000))
    avps = with_random_vector(
        [avp(AvpType.MESSAGE_TYPE, MessageType.ICRQ), avp(AvpType.ASSIGNED_SESSION_ID, 77, hidden=True),
         avp(AvpType.CALL_SERIAL_NUMBER, 5, hidden=True)],
        lambda n: bytes(next(rng) & 0xFF for _ in range(n)),
    )
    assert avps[1].attr_type == AvpType.RANDOM_VECTOR
    msg = ControlMessage(3, 0, 1, 2, tuple(avps))
    wire = encode_message(msg, b"secret")
    assert decode_message(wire, b"secret") == msg
    blind = decode_message(wire)  # no secret: the value stays hidden
    assert isinstance(blind.get(AvpType.ASSIGNED_SESSION_ID), HiddenValue)
    with pytest.raises(LocalUsageError):
        encode_message(ControlMessage(3, 0, 1, 2, (avp(AvpType.MESSAGE_TYPE, 10),
                                                   avp(AvpType.ASSIGNED_SESSION_ID, 1, hidden=True))), b"s")


def test_wrong_secret_gives_a_decode_error_or_a_wrong_value_never_a_crash():
    avps = (avp(AvpType.MESSAGE_TYPE, MessageType.ICRQ), avp(AvpType.RANDOM_VECTOR, b"r" * 16),
            avp(AvpType.ASSIGNED_SESSION_ID, 77, hidden=True))
    wire = encode_message(ControlMessage(3, 0, 1, 2, avps), b"right")
    try:
        decode_message(wire, b"wrong")
    except DecodeError:
        pass


def test_first_avp_must_be_message_type():
    wire = encode_message(ControlMessage(1, 0, 0, 0, (avp(AvpType.ASSIGNED_TUNNEL_ID, 1),)))
    with pytest.raises(DecodeError):
        decode_message(wire)


def test_missing_avps_split_into_fatal_and_tolerated():
    msg = ControlMessage(0, 0, 0, 0, make_message(MessageType.SCCRQ, avp(AvpType.ASSIGNED_TUNNEL_ID, 5)))
    fatal, tolerated = missing_avps(msg)
    assert fatal == {AvpType.PROTOCOL_VERSION}
    assert tolerated == {AvpType.HOST_NAME, AvpType.FRAMING_CAPABILITIES}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80",
        bytes.fromhex("8005 0000 0000"),  # length < 6
        bytes.fromhex("8010 0000 0000 0001"),  # length past the end
        bytes.fromhex("8007 0000 0000 01"),  # Message Type of 1 byte
        bytes.fromhex("8009 0000 0009 000102"),  # Assigned Tunnel ID of 3 bytes
        bytes.fromhex("800b 0000 000d 0102030405"),  # Challenge Response of 5 bytes
        bytes.fromhex("8006 0000 0007"),  # empty Host Name
        bytes.fromhex("8007 0000 0027 00"),  # Sequencing Required with a value
    ],
)
def test_bad_avps_raise_decode_error(raw):
    with pytest.raises(DecodeError):
        decode_avps(raw)


# --- property tests --------------------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
octets = st.binary(max_size=40)
VALUE_STRATEGIES = {
    AvpType.MESSAGE_TYPE: u16,
    AvpType.RESULT_CODE: st.one_of(
        st.builds(ResultCode, u16),
        st.builds(ResultCode, u16, u16, octets),
    ),
    AvpType.PROTOCOL_VERSION: st.tuples(st.integers(0, 255), st.integers(0, 255)),
    AvpType.TIE_BREAKER: st.binary(min_size=8, max_size=8),
    AvpType.FIRMWARE_REVISION: u16,
    AvpType.HOST_NAME: st.binary(min_size=1, max_size=40),
    AvpType.CHALLENGE: st.binary(min_size=1, max_size=40),
    AvpType.Q931_CAUSE_CODE: st.builds(Q931Cause, u16, st.integers(0, 255), octets),
    AvpType.CHALLENGE_RESPONSE: st.binary(min_size=16, max_size=16),
    AvpType.PROXY_AUTHEN_CHALLENGE: st.binary(min_size=1, max_size=40),
    AvpType.PROXY_AUTHEN_ID: st.integers(0, 255),
    AvpType.CALL_ERRORS: st.builds(CallErrors, u32, u32, u32, u32, u32, u32),
    AvpType.ACCM: st.builds(Accm, u32, u32),
    AvpType.RANDOM_VECTOR: st.binary(min_size=1, max_size=40),
    AvpType.SEQUENCING_REQUIRED: st.just(True),
    AvpType.PPP_DISCONNECT_CAUSE_CODE: st.builds(PppDisconnectCause, u16, u16, st.integers(0, 255), octets),
}


def _value_strategy(t: AvpType):
    if t in VALUE_STRATEGIES:
        return VALUE_STRATEGIES[t]
    codec = AVP_TABLE[t].codec
    if codec is A.U16:
        return u16
    if codec is A.U32:
        return u32
    return octets


ietf_avp = st.sampled_from([t for t in AvpType if t != AvpType.MESSAGE_TYPE]).flatmap(
    lambda t: st.builds(lambda v, m: Avp(int(t), v, m), _value_strategy(t), st.booleans())
)
vendor_avp = st.builds(lambda v, t, b, m: Avp(t, b, m, False, v), st.integers(1, 0xFFFF), u16, octets, st.booleans())
messages = st.builds(
    lambda tid, sid, ns, nr, mt, rest: ControlMessage(tid, sid, ns, nr, (avp(AvpType.MESSAGE_TYPE, mt),) + tuple(rest)),
    u16, u16, u16, u16, st.sampled_from(list(MessageType)), st.lists(st.one_of(ietf_avp, vendor_avp), max_size=8),
)


@given(messages)
@settings(max_examples=400)
def test_decode_encode_round_trip(msg):
    assert decode_message(encode_message(msg)) == msg


@given(messages, st.binary(min_size=1, max_size=16))
@settings(max_examples=200)
def test_round_trip_with_everything_hideable_hidden(msg, secret):
    avps = [msg.avps[0]] + [
        Avp(a.attr_type, a.value, a.mandatory, a.known and AVP_TABLE[a.attr_type].may_hide, a.vendor_id)
        for a in msg.avps[1:]
    ]
    msg = ControlMessage(msg.tunnel_id, msg.session_id, msg.ns, msg.nr,
                         tuple(with_random_vector(avps, lambda n: b"\x5a" * n)))
    assert decode_message(encode_message(msg, secret), secret) == msg


@given(st.binary(max_size=300))
@settings(max_examples=2000)
def test_random_bytes_raise_only_decode_error(data):
    try:
        decode_message(data)
    except DecodeError:
        pass
    try:
        decode_avps(data, b"secret")
    except DecodeError:
        pass


@given(messages, st.data())
@settings(max_examples=300)
def test_mutated_messages_raise_only_decode_error(msg, data):
    wire = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        decode_message(bytes(wire[:cut]), b"k")
    except DecodeError:
        pass
