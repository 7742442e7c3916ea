"""Real peers' bytes: every control message in shared/traces decodes, and re-encodes to the same bytes."""

from __future__ import annotations

import pytest

from fastl2tp.wire.avp import AvpType, MessageType, ResultCode, decode_message, encode_message, missing_avps, \
    unknown_mandatory
from fastl2tp.wire.l2tp import decode_header
from tests.pcaputil import TRACES, l2tp_packets

PCAPS = sorted(TRACES.glob("*/*.pcap"))


def control_messages(path):
    for p in l2tp_packets(path):
        header, start, end = decode_header(p.payload)
        if header.is_control:
            yield p, decode_message(p.payload), p.payload[:end]


def test_traces_are_present():
    assert len(PCAPS) >= 20, f"expected the shared traces under {TRACES}"


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_control_message_decodes_and_reencodes_identically(path):
    n = 0
    for _, msg, wire in control_messages(path):
        n += 1
        assert encode_message(msg) == wire
        fatal, _ = missing_avps(msg)
        assert not fatal
        assert unknown_mandatory(msg) is None
    assert n >= 1


def test_softether_sccrp_avp_order_and_window():
    msgs = [m for _, m, _ in control_messages(TRACES / "softether" / "sccrq-sccrp.pcap")]
    sccrp = next(m for m in msgs if m.msg_type is MessageType.SCCRP)
    assert [a.attr_type for a in sccrp.avps] == [
        AvpType.MESSAGE_TYPE, AvpType.PROTOCOL_VERSION, AvpType.FRAMING_CAPABILITIES,
        AvpType.BEARER_CAPABILITIES, AvpType.HOST_NAME, AvpType.VENDOR_NAME, AvpType.ASSIGNED_TUNNEL_ID,
        AvpType.RECEIVE_WINDOW_SIZE]
    assert sccrp.get(AvpType.RECEIVE_WINDOW_SIZE) == 16
    assert sccrp.get(AvpType.VENDOR_NAME) == b"L2TP"


def test_softether_stopccn_result_code_quirk():
    msgs = [m for _, m, _ in control_messages(TRACES / "softether" / "sccrq-sccrp.pcap")]
    stops = [m.get(AvpType.RESULT_CODE) for m in msgs if m.msg_type is MessageType.StopCCN]
    assert ResultCode(0, 0x0600, b"\0\0\0\0") in stops


def test_xl2tpd_session_exchange():
    msgs = [m for _, m, _ in control_messages(TRACES / "linux-xl2tpd-pppd" / "pap-nomppe.pcap")]
    types = [m.msg_type for m in msgs if not m.is_zlb]
    assert types == [MessageType.SCCRQ, MessageType.SCCRP, MessageType.SCCCN, MessageType.ICRQ, MessageType.ICRP,
                     MessageType.ICCN, MessageType.CDN, MessageType.StopCCN]
    sccrq = msgs[0]
    assert sccrq.get(AvpType.PROTOCOL_VERSION) == (1, 0)
    assert sccrq.get(AvpType.ASSIGNED_TUNNEL_ID)
