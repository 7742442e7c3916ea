"""Minimal well-formed control messages of every type, for driving machines in tests."""

from __future__ import annotations

from fastl2tp.wire.avp import (
    Accm,
    AvpType,
    CallErrors,
    ControlMessage,
    MessageType,
    ResultCode,
    avp,
    make_message,
)

REQUIRED = {
    MessageType.SCCRQ: lambda: [avp(AvpType.PROTOCOL_VERSION, (1, 0)), avp(AvpType.HOST_NAME, b"peer"),
                                avp(AvpType.FRAMING_CAPABILITIES, 3), avp(AvpType.ASSIGNED_TUNNEL_ID, 4242)],
    MessageType.SCCRP: lambda: [avp(AvpType.PROTOCOL_VERSION, (1, 0)), avp(AvpType.HOST_NAME, b"peer"),
                                avp(AvpType.FRAMING_CAPABILITIES, 3), avp(AvpType.ASSIGNED_TUNNEL_ID, 4242)],
    MessageType.SCCCN: lambda: [],
    MessageType.StopCCN: lambda: [avp(AvpType.ASSIGNED_TUNNEL_ID, 4242), avp(AvpType.RESULT_CODE, ResultCode(1, 0))],
    MessageType.HELLO: lambda: [],
    MessageType.OCRQ: lambda: [avp(AvpType.ASSIGNED_SESSION_ID, 77), avp(AvpType.CALL_SERIAL_NUMBER, 1),
                               avp(AvpType.MINIMUM_BPS, 0), avp(AvpType.MAXIMUM_BPS, 1), avp(AvpType.BEARER_TYPE, 0),
                               avp(AvpType.FRAMING_TYPE, 1), avp(AvpType.CALLED_NUMBER, b"123")],
    MessageType.OCRP: lambda: [avp(AvpType.ASSIGNED_SESSION_ID, 77)],
    MessageType.OCCN: lambda: [avp(AvpType.TX_CONNECT_SPEED, 1), avp(AvpType.FRAMING_TYPE, 1)],
    MessageType.ICRQ: lambda: [avp(AvpType.ASSIGNED_SESSION_ID, 77), avp(AvpType.CALL_SERIAL_NUMBER, 1)],
    MessageType.ICRP: lambda: [avp(AvpType.ASSIGNED_SESSION_ID, 77)],
    MessageType.ICCN: lambda: [avp(AvpType.TX_CONNECT_SPEED, 1), avp(AvpType.FRAMING_TYPE, 1)],
    MessageType.CDN: lambda: [avp(AvpType.RESULT_CODE, ResultCode(1, 0)), avp(AvpType.ASSIGNED_SESSION_ID, 77)],
    MessageType.WEN: lambda: [avp(AvpType.CALL_ERRORS, CallErrors(1, 2, 3, 4, 5, 6))],
    MessageType.SLI: lambda: [avp(AvpType.ACCM, Accm(0xFFFFFFFF, 0))],
}


def message(mt: MessageType, tunnel_id: int, session_id: int, ns: int, nr: int, *extra) -> ControlMessage:
    return ControlMessage(tunnel_id, session_id, ns, nr, make_message(mt, *REQUIRED[mt](), *extra))
