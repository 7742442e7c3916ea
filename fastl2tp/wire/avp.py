"""L2TPv2 AVPs (RFC 2661 §4) and control messages (§3.2, §6).

```
 0                   1                   2                   3
 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
|M|H| rsvd  |      Length       |           Vendor ID           |
|         Attribute Type        |        Attribute Value...
```

Every AVP of §4.4 (and the PPP Disconnect Cause Code of RFC 3145) is described once in ``AVP_TABLE``: its
name, whether it must carry the M bit, whether it may be hidden, and the codec of its value. Decoding
dispatches on (vendor id, attribute type) so that a vendor AVP of type 2 is never taken for Protocol
Version. Values are plain Python types (int, bytes, tuples, small frozen dataclasses) so that
``decode_message(encode_message(m)) == m``.

Hiding (§4.3) uses the tunnel secret and the Random Vector AVP that most recently precedes the hidden
AVP in the same message.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import DecodeError, LocalUsageError
from .buffer import Reader, Writer
from .l2tp import Header, decode_header, encode_header

AVP_HEADER_LEN = 6
AVP_MAX_LEN = 1023  # 10-bit Length field
FLAG_M = 0x8000
FLAG_H = 0x4000
AVP_RESERVED_MASK = 0x3C00
IETF_VENDOR = 0


class MessageType(enum.IntEnum):
    """Control message types, RFC 2661 §3.2."""

    SCCRQ = 1
    SCCRP = 2
    SCCCN = 3
    StopCCN = 4
    HELLO = 6
    OCRQ = 7
    OCRP = 8
    OCCN = 9
    ICRQ = 10
    ICRP = 11
    ICCN = 12
    CDN = 14
    WEN = 15
    SLI = 16


TUNNEL_MESSAGES = frozenset(
    {MessageType.SCCRQ, MessageType.SCCRP, MessageType.SCCCN, MessageType.StopCCN, MessageType.HELLO}
)


class AvpType(enum.IntEnum):
    """IETF attribute types, RFC 2661 §4.4 (and RFC 3145 for 46)."""

    MESSAGE_TYPE = 0
    RESULT_CODE = 1
    PROTOCOL_VERSION = 2
    FRAMING_CAPABILITIES = 3
    BEARER_CAPABILITIES = 4
    TIE_BREAKER = 5
    FIRMWARE_REVISION = 6
    HOST_NAME = 7
    VENDOR_NAME = 8
    ASSIGNED_TUNNEL_ID = 9
    RECEIVE_WINDOW_SIZE = 10
    CHALLENGE = 11
    Q931_CAUSE_CODE = 12
    CHALLENGE_RESPONSE = 13
    ASSIGNED_SESSION_ID = 14
    CALL_SERIAL_NUMBER = 15
    MINIMUM_BPS = 16
    MAXIMUM_BPS = 17
    BEARER_TYPE = 18
    FRAMING_TYPE = 19
    CALLED_NUMBER = 21
    CALLING_NUMBER = 22
    SUB_ADDRESS = 23
    TX_CONNECT_SPEED = 24
    PHYSICAL_CHANNEL_ID = 25
    INITIAL_RECEIVED_LCP_CONFREQ = 26
    LAST_SENT_LCP_CONFREQ = 27
    LAST_RECEIVED_LCP_CONFREQ = 28
    PROXY_AUTHEN_TYPE = 29
    PROXY_AUTHEN_NAME = 30
    PROXY_AUTHEN_CHALLENGE = 31
    PROXY_AUTHEN_ID = 32
    PROXY_AUTHEN_RESPONSE = 33
    CALL_ERRORS = 34
    ACCM = 35
    RANDOM_VECTOR = 36
    PRIVATE_GROUP_ID = 37
    RX_CONNECT_SPEED = 38
    SEQUENCING_REQUIRED = 39
    PPP_DISCONNECT_CAUSE_CODE = 46  # RFC 3145


# --- result and error codes (§4.4.2) -------------------------------------------------------------


class StopCCNResult(enum.IntEnum):
    GENERAL_REQUEST = 1  # general request to clear control connection
    GENERAL_ERROR = 2  # general error, Error Code indicates the problem
    CHANNEL_EXISTS = 3  # control channel already exists
    NOT_AUTHORIZED = 4  # requester is not authorized to establish a control channel
    BAD_PROTOCOL_VERSION = 5  # the protocol version of the requester is not supported
    SHUTTING_DOWN = 6  # requester is being shut down
    FSM_ERROR = 7  # finite state machine error


class CDNResult(enum.IntEnum):
    LOST_CARRIER = 1
    GENERAL_ERROR = 2  # for the reason indicated in the error code
    ADMIN = 3  # for administrative reasons
    TEMPORARY_NO_FACILITIES = 4
    PERMANENT_NO_FACILITIES = 5
    INVALID_DESTINATION = 6
    NO_CARRIER = 7
    BUSY = 8
    NO_DIAL_TONE = 9
    TIMEOUT = 10  # call was not established within time allotted by LAC
    NO_FRAMING = 11


class ErrorCode(enum.IntEnum):
    NO_ERROR = 0
    NO_CONTROL_CONNECTION = 1
    BAD_LENGTH = 2
    BAD_VALUE = 3  # a field value was out of range or a reserved field was non-zero
    NO_RESOURCES = 4
    INVALID_SESSION_ID = 5
    VENDOR_ERROR = 6
    TRY_ANOTHER = 7
    UNKNOWN_MANDATORY_AVP = 8


# --- value types ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultCode:
    """Result Code AVP. ``error`` is None when the AVP carries only the result (8 bytes, as RouterOS)."""

    result: int
    error: int | None = None
    message: bytes = b""

    def __post_init__(self) -> None:
        if self.error is None and self.message:
            raise ValueError("a Result Code message needs an error code")


@dataclass(frozen=True, slots=True)
class Q931Cause:
    cause: int
    msg_code: int
    advisory: bytes = b""


@dataclass(frozen=True, slots=True)
class CallErrors:
    crc: int
    framing: int
    hardware_overruns: int
    buffer_overruns: int
    timeouts: int
    alignment: int


@dataclass(frozen=True, slots=True)
class Accm:
    send: int
    receive: int


@dataclass(frozen=True, slots=True)
class PppDisconnectCause:
    """RFC 3145 PPP Disconnect Cause Code."""

    code: int
    protocol: int
    direction: int
    message: bytes = b""


@dataclass(frozen=True, slots=True)
class HiddenValue:
    """The still-hidden value of an AVP that could not be unhidden (no secret or no Random Vector)."""

    raw: bytes


@dataclass(frozen=True, slots=True)
class Avp:
    """One AVP. ``value`` is typed by ``AVP_TABLE`` for IETF AVPs, raw bytes for others."""

    attr_type: int
    value: Any
    mandatory: bool = True
    hidden: bool = False
    vendor_id: int = IETF_VENDOR

    @property
    def known(self) -> bool:
        return self.vendor_id == IETF_VENDOR and self.attr_type in AVP_TABLE

    @property
    def name(self) -> str:
        if self.vendor_id == IETF_VENDOR:
            try:
                return AvpType(self.attr_type).name
            except ValueError:
                pass
        return f"vendor {self.vendor_id} type {self.attr_type}"


# --- value codecs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueCodec:
    decode: Callable[[Reader], Any]
    encode: Callable[[Writer, Any], None]


def _uint(width: int) -> ValueCodec:
    def dec(r: Reader) -> int:
        value = r.bytes(width, "avp value")
        if not r.eof():
            raise DecodeError(f"value longer than {width} bytes", offset=r.pos, field="avp value")
        return int.from_bytes(value, "big")

    def enc(w: Writer, v: int) -> None:
        w.bytes(int(v).to_bytes(width, "big"))

    return ValueCodec(dec, enc)


def _octets(min_len: int = 0, exact: int | None = None) -> ValueCodec:
    def dec(r: Reader) -> bytes:
        value = r.rest()
        if exact is not None and len(value) != exact:
            raise DecodeError(f"value must be {exact} bytes, got {len(value)}", field="avp value")
        if len(value) < min_len:
            raise DecodeError(f"value shorter than {min_len} bytes", field="avp value")
        return value

    def enc(w: Writer, v: bytes) -> None:
        w.bytes(bytes(v))

    return ValueCodec(dec, enc)


def _dec_empty(r: Reader) -> bool:
    if not r.eof():
        raise DecodeError("value must be empty", offset=r.pos, field="avp value")
    return True


def _dec_result(r: Reader) -> ResultCode:
    result = r.u16("result code")
    if r.eof():
        return ResultCode(result)
    error = r.u16("error code")
    return ResultCode(result, error, r.rest())


def _enc_result(w: Writer, v: ResultCode) -> None:
    w.u16(v.result)
    if v.error is not None:
        w.u16(v.error)
        w.bytes(v.message)


def _dec_version(r: Reader) -> tuple[int, int]:
    ver, rev = r.u8("version"), r.u8("revision")
    _dec_empty(r)
    return (ver, rev)


def _enc_version(w: Writer, v: tuple[int, int]) -> None:
    w.u8(v[0])
    w.u8(v[1])


def _dec_q931(r: Reader) -> Q931Cause:
    return Q931Cause(r.u16("cause code"), r.u8("cause msg"), r.rest())


def _enc_q931(w: Writer, v: Q931Cause) -> None:
    w.u16(v.cause)
    w.u8(v.msg_code)
    w.bytes(v.advisory)


def _dec_proxy_id(r: Reader) -> int:
    r.u8("reserved")
    ident = r.u8("proxy authen id")
    _dec_empty(r)
    return ident


def _enc_proxy_id(w: Writer, v: int) -> None:
    w.u8(0)
    w.u8(v)


def _dec_call_errors(r: Reader) -> CallErrors:
    r.u16("reserved")
    values = [r.u32("call errors") for _ in range(6)]
    _dec_empty(r)
    return CallErrors(*values)


def _enc_call_errors(w: Writer, v: CallErrors) -> None:
    w.u16(0)
    for x in (v.crc, v.framing, v.hardware_overruns, v.buffer_overruns, v.timeouts, v.alignment):
        w.u32(x)


def _dec_accm(r: Reader) -> Accm:
    r.u16("reserved")
    send, recv = r.u32("send accm"), r.u32("receive accm")
    _dec_empty(r)
    return Accm(send, recv)


def _enc_accm(w: Writer, v: Accm) -> None:
    w.u16(0)
    w.u32(v.send)
    w.u32(v.receive)


def _dec_ppp_cause(r: Reader) -> PppDisconnectCause:
    return PppDisconnectCause(r.u16("code"), r.u16("protocol"), r.u8("direction"), r.rest())


def _enc_ppp_cause(w: Writer, v: PppDisconnectCause) -> None:
    w.u16(v.code)
    w.u16(v.protocol)
    w.u8(v.direction)
    w.bytes(v.message)


U16, U32 = _uint(2), _uint(4)
EMPTY = ValueCodec(_dec_empty, lambda w, v: None)


@dataclass(frozen=True, slots=True)
class AvpInfo:
    """How one IETF AVP looks: ``mandatory`` is the M bit the RFC requires on send."""

    attr_type: AvpType
    codec: ValueCodec
    mandatory: bool = True
    may_hide: bool = True


def _info(t: AvpType, codec: ValueCodec, mandatory: bool = True, may_hide: bool = True) -> AvpInfo:
    return AvpInfo(t, codec, mandatory, may_hide)


T = AvpType
AVP_TABLE: dict[int, AvpInfo] = {
    i.attr_type: i
    for i in (
        _info(T.MESSAGE_TYPE, U16, may_hide=False),
        _info(T.RESULT_CODE, ValueCodec(_dec_result, _enc_result), may_hide=False),
        _info(T.PROTOCOL_VERSION, ValueCodec(_dec_version, _enc_version), may_hide=False),
        _info(T.FRAMING_CAPABILITIES, U32),
        _info(T.BEARER_CAPABILITIES, U32),
        _info(T.TIE_BREAKER, _octets(exact=8), mandatory=False, may_hide=False),
        _info(T.FIRMWARE_REVISION, U16, mandatory=False),
        _info(T.HOST_NAME, _octets(min_len=1), may_hide=False),
        _info(T.VENDOR_NAME, _octets(), mandatory=False),
        _info(T.ASSIGNED_TUNNEL_ID, U16),
        _info(T.RECEIVE_WINDOW_SIZE, U16, may_hide=False),
        _info(T.CHALLENGE, _octets(min_len=1)),
        _info(T.Q931_CAUSE_CODE, ValueCodec(_dec_q931, _enc_q931), may_hide=False),
        _info(T.CHALLENGE_RESPONSE, _octets(exact=16)),
        _info(T.ASSIGNED_SESSION_ID, U16),
        _info(T.CALL_SERIAL_NUMBER, U32),
        _info(T.MINIMUM_BPS, U32),
        _info(T.MAXIMUM_BPS, U32),
        _info(T.BEARER_TYPE, U32),
        _info(T.FRAMING_TYPE, U32),
        _info(T.CALLED_NUMBER, _octets()),
        _info(T.CALLING_NUMBER, _octets()),
        _info(T.SUB_ADDRESS, _octets()),
        _info(T.TX_CONNECT_SPEED, U32),
        _info(T.PHYSICAL_CHANNEL_ID, U32, mandatory=False),
        _info(T.INITIAL_RECEIVED_LCP_CONFREQ, _octets(), mandatory=False),
        _info(T.LAST_SENT_LCP_CONFREQ, _octets(), mandatory=False),
        _info(T.LAST_RECEIVED_LCP_CONFREQ, _octets(), mandatory=False),
        _info(T.PROXY_AUTHEN_TYPE, U16, mandatory=False),
        _info(T.PROXY_AUTHEN_NAME, _octets(), mandatory=False),
        _info(T.PROXY_AUTHEN_CHALLENGE, _octets(min_len=1), mandatory=False),
        _info(T.PROXY_AUTHEN_ID, ValueCodec(_dec_proxy_id, _enc_proxy_id), mandatory=False),
        _info(T.PROXY_AUTHEN_RESPONSE, _octets(), mandatory=False),
        _info(T.CALL_ERRORS, ValueCodec(_dec_call_errors, _enc_call_errors)),
        _info(T.ACCM, ValueCodec(_dec_accm, _enc_accm)),
        _info(T.RANDOM_VECTOR, _octets(min_len=1), may_hide=False),
        _info(T.PRIVATE_GROUP_ID, _octets(), mandatory=False),
        _info(T.RX_CONNECT_SPEED, U32, mandatory=False),
        _info(T.SEQUENCING_REQUIRED, EMPTY),
        _info(T.PPP_DISCONNECT_CAUSE_CODE, ValueCodec(_dec_ppp_cause, _enc_ppp_cause), mandatory=False),
    )
}
del T


def avp(attr_type: AvpType, value: Any, *, hidden: bool = False, mandatory: bool | None = None) -> Avp:
    """An IETF AVP with the M bit the RFC asks for (unless ``mandatory`` says otherwise)."""
    info = AVP_TABLE[attr_type]
    return Avp(int(attr_type), value, info.mandatory if mandatory is None else mandatory, hidden)


# --- hiding (§4.3) -------------------------------------------------------------------------------


def _hide_stream(attr_type: int, secret: bytes, random_vector: bytes, data: bytes, *, hide: bool) -> bytes:
    """XOR ``data`` with the MD5 chain of §4.3; the chain is fed with the ciphertext either way."""
    out = bytearray()
    block = hashlib.md5(attr_type.to_bytes(2, "big") + secret + random_vector).digest()
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        mixed = bytes(a ^ b for a, b in zip(chunk, block))
        out += mixed
        cipher = mixed if hide else chunk
        block = hashlib.md5(secret + cipher).digest()
    return bytes(out)


def hide_value(attr_type: int, value: bytes, secret: bytes, random_vector: bytes, padding: bytes = b"") -> bytes:
    """The hidden form of ``value``: 2-byte original length, value, optional padding, all masked."""
    plain = len(value).to_bytes(2, "big") + value + padding
    return _hide_stream(attr_type, secret, random_vector, plain, hide=True)


def unhide_value(attr_type: int, hidden: bytes, secret: bytes, random_vector: bytes) -> bytes:
    plain = _hide_stream(attr_type, secret, random_vector, hidden, hide=False)
    if len(plain) < 2:
        raise DecodeError("hidden value shorter than its length field", field="hidden avp")
    length = int.from_bytes(plain[:2], "big")
    if length > len(plain) - 2:
        raise DecodeError("hidden value length exceeds the AVP (wrong secret?)", field="hidden avp")
    return plain[2 : 2 + length]


# --- AVP list codec ------------------------------------------------------------------------------


def _decode_value(attr_type: int, data: bytes, offset: int) -> Any:
    info = AVP_TABLE[attr_type]
    try:
        return info.codec.decode(Reader(data))
    except DecodeError as exc:
        raise DecodeError(f"{AvpType(attr_type).name}: {exc}", offset=offset, field="avp value") from None


def decode_avps(data: bytes, secret: bytes | None = None) -> tuple[Avp, ...]:
    """Decode a sequence of AVPs. Hidden AVPs are unhidden when ``secret`` is given and a Random
    Vector precedes them; otherwise their value is a ``HiddenValue``. AVPs with reserved bits set
    are kept as unknown (§4.1: they MUST be treated as unrecognized)."""
    r = Reader(data)
    out: list[Avp] = []
    random_vector: bytes | None = None
    while not r.eof():
        start = r.pos
        flags_len = r.u16("avp flags/length")
        length = flags_len & 0x03FF
        if length < AVP_HEADER_LEN:
            raise DecodeError(f"AVP length {length} is less than 6", offset=start, field="avp length")
        if start + length > r.end:
            raise DecodeError(f"AVP length {length} runs past the message", offset=start, field="avp length")
        vendor = r.u16("vendor id")
        attr_type = r.u16("attribute type")
        raw = r.bytes(length - AVP_HEADER_LEN, "avp value")
        mandatory = bool(flags_len & FLAG_M)
        hidden = bool(flags_len & FLAG_H)
        reserved = bool(flags_len & AVP_RESERVED_MASK)
        known = vendor == IETF_VENDOR and attr_type in AVP_TABLE and not reserved
        value: Any = raw
        if known:
            if hidden:
                if secret is None or random_vector is None:
                    value = HiddenValue(raw)
                else:
                    plain = unhide_value(attr_type, raw, secret, random_vector)
                    value = _decode_value(attr_type, plain, start)
            else:
                value = _decode_value(attr_type, raw, start)
                if attr_type == AvpType.RANDOM_VECTOR:
                    random_vector = value
        elif hidden:
            value = HiddenValue(raw)
        if reserved:
            # Keep the raw flag word's meaning: an unrecognized AVP. Record it under an impossible
            # vendor-less form by keeping its bytes; re-encoding sets the reserved bits back.
            value = _ReservedBits(flags_len & AVP_RESERVED_MASK, raw)
        out.append(Avp(attr_type, value, mandatory, hidden, vendor))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _ReservedBits:
    """An AVP received with reserved flag bits set: unrecognized by definition, kept byte-exact."""

    bits: int
    raw: bytes


def encode_avps(
    avps: tuple[Avp, ...] | list[Avp],
    secret: bytes | None = None,
    rng: Callable[[int], bytes] | None = None,
) -> bytes:
    """Encode AVPs. An AVP with ``hidden=True`` and a plain value is hidden with ``secret`` and the
    Random Vector AVP that precedes it (the caller puts one there: see ``with_random_vector``)."""
    w = Writer()
    random_vector: bytes | None = None
    for a in avps:
        flags = (FLAG_M if a.mandatory else 0) | (FLAG_H if a.hidden else 0)
        value = a.value
        if isinstance(value, _ReservedBits):
            flags |= value.bits
            body = value.raw
        elif isinstance(value, HiddenValue):
            body = value.raw
        elif a.vendor_id == IETF_VENDOR and a.attr_type in AVP_TABLE:
            vw = Writer()
            AVP_TABLE[a.attr_type].codec.encode(vw, value)
            body = vw.getvalue()
            if a.attr_type == AvpType.RANDOM_VECTOR:
                random_vector = body
            if a.hidden:
                if secret is None or random_vector is None:
                    raise LocalUsageError(f"hiding {a.name} needs a secret and a preceding Random Vector")
                body = hide_value(a.attr_type, body, secret, random_vector)
        else:
            body = bytes(value)
        length = AVP_HEADER_LEN + len(body)
        if length > AVP_MAX_LEN:
            raise LocalUsageError(f"AVP {a.name} is {length} bytes, more than {AVP_MAX_LEN}")
        w.u16(flags | length)
        w.u16(a.vendor_id)
        w.u16(a.attr_type)
        w.bytes(body)
    return w.getvalue()


# --- control messages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A control message: header fields and AVPs. A ZLB acknowledgement has no AVPs."""

    tunnel_id: int
    session_id: int
    ns: int
    nr: int
    avps: tuple[Avp, ...] = ()

    @property
    def is_zlb(self) -> bool:
        return not self.avps

    @property
    def msg_type(self) -> MessageType | int | None:
        """The message type (an int when we do not know it), None for a ZLB."""
        if not self.avps:
            return None
        v = self.avps[0].value
        try:
            return MessageType(v)
        except ValueError:
            return v

    def get(self, attr_type: AvpType, default: Any = None) -> Any:
        """The value of the first IETF AVP of this type."""
        for a in self.avps:
            if a.attr_type == attr_type and a.vendor_id == IETF_VENDOR:
                return a.value
        return default

    def has(self, attr_type: AvpType) -> bool:
        return any(a.attr_type == attr_type and a.vendor_id == IETF_VENDOR for a in self.avps)


def decode_message(data: bytes | bytearray | memoryview, secret: bytes | None = None) -> ControlMessage:
    """Decode a control message (header and AVPs). The first AVP must be Message Type."""
    header, start, end = decode_header(data)
    if not header.is_control:
        raise DecodeError("not a control message", offset=0, field="flags")
    return decode_control_body(header, bytes(data[start:end]), secret)


def decode_control_body(header: Header, body: bytes, secret: bytes | None = None) -> ControlMessage:
    avps = decode_avps(body, secret)
    if avps:
        first = avps[0]
        if first.vendor_id != IETF_VENDOR or first.attr_type != AvpType.MESSAGE_TYPE or first.hidden:
            raise DecodeError("first AVP is not Message Type", offset=header.size, field="message type")
    assert header.ns is not None and header.nr is not None
    return ControlMessage(header.tunnel_id, header.session_id, header.ns, header.nr, avps)


def encode_message(
    msg: ControlMessage, secret: bytes | None = None, rng: Callable[[int], bytes] | None = None
) -> bytes:
    body = encode_avps(msg.avps, secret, rng)
    header = Header(True, msg.tunnel_id, msg.session_id, msg.ns, msg.nr)
    return encode_header(header, len(body)) + body


def with_random_vector(avps: list[Avp], rng: Callable[[int], bytes], size: int = 16) -> list[Avp]:
    """Insert a Random Vector AVP before the first hidden AVP (if any AVP is to be hidden)."""
    for i, a in enumerate(avps):
        if a.hidden:
            return avps[:i] + [avp(AvpType.RANDOM_VECTOR, rng(size))] + avps[i:]
    return avps


def make_message(msg_type: MessageType, *avps: Avp, session_id: int = 0) -> tuple[Avp, ...]:
    """The AVP tuple of a message of ``msg_type``: Message Type first, then ``avps``."""
    return (avp(AvpType.MESSAGE_TYPE, int(msg_type)),) + tuple(avps)


# --- per-message AVP rules (§6) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """Which AVPs a message must and may carry (RFC 2661 §6.x). Message Type is implied."""

    must: frozenset[AvpType]
    may: frozenset[AvpType]
    section: str


def _spec(section: str, must: tuple[AvpType, ...], may: tuple[AvpType, ...] = ()) -> MessageSpec:
    return MessageSpec(frozenset(must), frozenset(may), section)


A = AvpType
_PROXY = (
    A.INITIAL_RECEIVED_LCP_CONFREQ,
    A.LAST_SENT_LCP_CONFREQ,
    A.LAST_RECEIVED_LCP_CONFREQ,
    A.PROXY_AUTHEN_TYPE,
    A.PROXY_AUTHEN_NAME,
    A.PROXY_AUTHEN_CHALLENGE,
    A.PROXY_AUTHEN_ID,
    A.PROXY_AUTHEN_RESPONSE,
    A.PRIVATE_GROUP_ID,
    A.RX_CONNECT_SPEED,
    A.SEQUENCING_REQUIRED,
)
MESSAGE_SPECS: dict[MessageType, MessageSpec] = {
    MessageType.SCCRQ: _spec(
        "6.1",
        (A.PROTOCOL_VERSION, A.HOST_NAME, A.FRAMING_CAPABILITIES, A.ASSIGNED_TUNNEL_ID),
        (A.BEARER_CAPABILITIES, A.RECEIVE_WINDOW_SIZE, A.CHALLENGE, A.TIE_BREAKER, A.FIRMWARE_REVISION,
         A.VENDOR_NAME, A.RANDOM_VECTOR),
    ),
    MessageType.SCCRP: _spec(
        "6.2",
        (A.PROTOCOL_VERSION, A.FRAMING_CAPABILITIES, A.HOST_NAME, A.ASSIGNED_TUNNEL_ID),
        (A.BEARER_CAPABILITIES, A.FIRMWARE_REVISION, A.VENDOR_NAME, A.RECEIVE_WINDOW_SIZE, A.CHALLENGE,
         A.CHALLENGE_RESPONSE, A.RANDOM_VECTOR),
    ),
    MessageType.SCCCN: _spec("6.3", (), (A.CHALLENGE_RESPONSE, A.RANDOM_VECTOR)),
    MessageType.StopCCN: _spec("6.4", (A.ASSIGNED_TUNNEL_ID, A.RESULT_CODE), (A.RANDOM_VECTOR,)),
    MessageType.HELLO: _spec("6.5", ()),
    MessageType.ICRQ: _spec(
        "6.6",
        (A.ASSIGNED_SESSION_ID, A.CALL_SERIAL_NUMBER),
        (A.BEARER_TYPE, A.PHYSICAL_CHANNEL_ID, A.CALLING_NUMBER, A.CALLED_NUMBER, A.SUB_ADDRESS,
         A.RANDOM_VECTOR),
    ),
    MessageType.ICRP: _spec("6.7", (A.ASSIGNED_SESSION_ID,), (A.RANDOM_VECTOR,)),
    MessageType.ICCN: _spec("6.8", (A.TX_CONNECT_SPEED, A.FRAMING_TYPE), _PROXY + (A.RANDOM_VECTOR,)),
    MessageType.OCRQ: _spec(
        "6.9",
        (A.ASSIGNED_SESSION_ID, A.CALL_SERIAL_NUMBER, A.MINIMUM_BPS, A.MAXIMUM_BPS, A.BEARER_TYPE,
         A.FRAMING_TYPE, A.CALLED_NUMBER),
        (A.SUB_ADDRESS, A.RANDOM_VECTOR),
    ),
    MessageType.OCRP: _spec("6.10", (A.ASSIGNED_SESSION_ID,), (A.PHYSICAL_CHANNEL_ID, A.RANDOM_VECTOR)),
    MessageType.OCCN: _spec(
        "6.11", (A.TX_CONNECT_SPEED, A.FRAMING_TYPE), (A.RX_CONNECT_SPEED, A.SEQUENCING_REQUIRED,
                                                       A.RANDOM_VECTOR)
    ),
    MessageType.CDN: _spec(
        "6.12", (A.RESULT_CODE, A.ASSIGNED_SESSION_ID), (A.Q931_CAUSE_CODE, A.PPP_DISCONNECT_CAUSE_CODE,
                                                         A.RANDOM_VECTOR)
    ),
    MessageType.WEN: _spec("6.13", (A.CALL_ERRORS,), (A.RANDOM_VECTOR,)),
    MessageType.SLI: _spec("6.14", (A.ACCM,), (A.RANDOM_VECTOR,)),
}
del A

# Must-AVPs that real peers are known to leave out and that we can do without: missing ones are
# counted, not fatal. (A minimal SCCRQ with only Assigned Tunnel ID is accepted by SoftEther; Windows
# and some CPEs leave out Framing Type / Connect Speed in ICCN or Call Serial Number in ICRQ.)
TOLERATED_MISSING: frozenset[AvpType] = frozenset(
    {
        AvpType.HOST_NAME,
        AvpType.FRAMING_CAPABILITIES,
        AvpType.CALL_SERIAL_NUMBER,
        AvpType.TX_CONNECT_SPEED,
        AvpType.FRAMING_TYPE,
    }
)


def missing_avps(msg: ControlMessage) -> tuple[frozenset[AvpType], frozenset[AvpType]]:
    """(fatal, tolerated) must-AVPs that ``msg`` lacks, per ``MESSAGE_SPECS``."""
    mt = msg.msg_type
    if not isinstance(mt, MessageType):
        return frozenset(), frozenset()
    present = {a.attr_type for a in msg.avps if a.vendor_id == IETF_VENDOR}
    missing = frozenset(t for t in MESSAGE_SPECS[mt].must if t not in present)
    return missing - TOLERATED_MISSING, missing & TOLERATED_MISSING


def unknown_mandatory(msg: ControlMessage) -> Avp | None:
    """The first AVP with the M bit that we do not recognize (§4.1: the session or tunnel must go)."""
    for a in msg.avps:
        if a.mandatory and (not a.known or isinstance(a.value, _ReservedBits)):
            return a
    return None


def unresolved_hidden(msg: ControlMessage) -> Avp | None:
    """The first recognized AVP whose value stayed hidden (no secret or no Random Vector)."""
    for a in msg.avps:
        if a.known and isinstance(a.value, HiddenValue):
            return a
    return None
