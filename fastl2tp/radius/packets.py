"""RADIUS packets of a NAS, sans-IO: requests built, replies checked and read.

RFC 2865 (Access), RFC 2866 (Accounting), RFC 2869 (extensions), RFC 3579 §3.2 (Message-Authenticator),
RFC 2548 (Microsoft attributes: MS-CHAP, MPPE keys), RFC 3162 (IPv6), RFC 5176 (Disconnect/CoA).

The codec is pyrad (``pyrad.packet``, ``pyrad.dictionary``) with our dictionary file ``dictionary``
beside this module (standard, Microsoft 311 and MikroTik 14988 attributes). pyrad does the framing
(header, attribute and Vendor-Specific splitting and joining), the attribute names and types of the
dictionary, User-Password hiding (RFC 2865 §5.2), the Request Authenticator of Accounting-Request and
Disconnect/CoA (RFC 2866 §3, RFC 5176 §3.5), the Message-Authenticator of what we send (RFC 3579 §3.2,
placed first; a zero vector for Accounting-Request) and the building of Disconnect/CoA replies
(Proxy-State copied, signed with the request's authenticator).

What pyrad does not give, and this module does:
- randomness and identifiers come from the caller (pyrad draws its own when they are not given, and
  keeps a module-wide identifier counter): the caller passes ``identifier`` and ``authenticator``;
- octets values are set raw: pyrad's octets encoder hex-decodes a value that happens to start with
  ``b"0x"``, which would corrupt a CHAP response or an echoed Class;
- the checks of a reply are explicit and each fails with its own ``DecodeError`` text: code, identifier,
  Response Authenticator, a missing Message-Authenticator where the request had one (Blast-RADIUS,
  CVE-2024-3596), a bad one (HMAC over the raw bytes with the Request Authenticator), unsolicited
  Proxy-State (pyrad's ``VerifyReply`` does the same checks but only says False);
- the MS-MPPE-Send/Recv-Key decryption (RFC 2548 §2.4.2/2.4.3) is strict here: pyrad's salt
  decryption does not check the salt's high bit nor that the key length octet fits the data, and
  MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1, MS-CHAPv1) is binary, which pyrad's ``PwDecrypt`` (text, trailing
  NULs stripped) cannot return;
- the values we honour are read from the raw octets with strict lengths: pyrad returns VALUE names
  instead of numbers for integers and raises ``ValueError`` for bad lengths; here every malformed
  reply raises only ``DecodeError``.

Nothing here reads a clock or a socket; the dictionary file is read once, on first use.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import ipaddress
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from pyrad import packet as _rp
from pyrad.dictionary import Dictionary

from ..errors import AuthError, DecodeError, LocalUsageError

MAX_PACKET = 4096  # RFC 2865 §3: maximum length
MAX_VALUE = 253  # one attribute's value (RFC 2865 §5)
MAX_VSA_VALUE = 247  # inside Vendor-Specific: 253 - vendor id (4) - vendor type and length (2)
MAX_PASSWORD = 128  # RFC 2865 §5.2
MESSAGE_AUTHENTICATOR = 80  # RFC 2869 §5.14
PROXY_STATE = 33
VENDOR_MICROSOFT = 311
VENDOR_MIKROTIK = 14988


class Code(enum.IntEnum):
    """RADIUS packet codes (RFC 2865 §3, RFC 2866 §4, RFC 5176 §2)."""

    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    DISCONNECT_REQUEST = 40
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45


class ServiceType(enum.IntEnum):
    """Service-Type (RFC 2865 §5.6; Authorize-Only RFC 5176 §3.1)."""

    LOGIN = 1
    FRAMED = 2
    AUTHORIZE_ONLY = 17


FRAMED_PROTOCOL_PPP = 1  # RFC 2865 §5.7
NAS_PORT_TYPE_VIRTUAL = 5  # RFC 2865 §5.41


class AcctStatusType(enum.IntEnum):
    """Acct-Status-Type (RFC 2866 §5.1)."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3
    ACCOUNTING_ON = 7
    ACCOUNTING_OFF = 8


class AcctAuthentic(enum.IntEnum):
    """Acct-Authentic (RFC 2866 §5.6): who authenticated the user."""

    RADIUS = 1
    LOCAL = 2


class TerminateCause(enum.IntEnum):
    """Acct-Terminate-Cause (RFC 2866 §5.10)."""

    USER_REQUEST = 1
    LOST_CARRIER = 2
    LOST_SERVICE = 3
    IDLE_TIMEOUT = 4
    SESSION_TIMEOUT = 5
    ADMIN_RESET = 6
    ADMIN_REBOOT = 7
    PORT_ERROR = 8
    NAS_ERROR = 9
    NAS_REQUEST = 10
    NAS_REBOOT = 11
    PORT_UNNEEDED = 12
    PORT_PREEMPTED = 13
    PORT_SUSPENDED = 14
    SERVICE_UNAVAILABLE = 15
    CALLBACK = 16
    USER_ERROR = 17
    HOST_REQUEST = 18


class ErrorCause(enum.IntEnum):
    """Error-Cause (RFC 5176 §3.6)."""

    RESIDUAL_SESSION_CONTEXT_REMOVED = 201
    INVALID_EAP_PACKET = 202
    UNSUPPORTED_ATTRIBUTE = 401
    MISSING_ATTRIBUTE = 402
    NAS_IDENTIFICATION_MISMATCH = 403
    INVALID_REQUEST = 404
    UNSUPPORTED_SERVICE = 405
    UNSUPPORTED_EXTENSION = 406
    INVALID_ATTRIBUTE_VALUE = 407
    ADMINISTRATIVELY_PROHIBITED = 501
    REQUEST_NOT_ROUTABLE = 502
    SESSION_CONTEXT_NOT_FOUND = 503
    SESSION_CONTEXT_NOT_REMOVABLE = 504
    OTHER_PROXY_PROCESSING_ERROR = 505
    RESOURCES_UNAVAILABLE = 506
    REQUEST_INITIATED = 507
    MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508


class MppeEncryptionPolicy(enum.IntEnum):
    """MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4)."""

    ALLOWED = 1
    REQUIRED = 2


class MppeEncryptionTypes(enum.IntFlag):
    """MS-MPPE-Encryption-Types (RFC 2548 §2.4.5): a bit mask. 2 = 40-bit keys allowed, 4 = 128-bit
    (FreeRADIUS sends 6 for both); 8 = 56-bit is Microsoft's (IAS "strong encryption")."""

    RC4_40 = 2
    RC4_128 = 4
    RC4_56 = 8


# --- the dictionary ------------------------------------------------------------------------------


@cache
def dictionary() -> Dictionary:
    """fastl2tp's RADIUS dictionary (the package file ``dictionary``), read once."""
    text = resources.files(__package__).joinpath("dictionary").read_text(encoding="utf-8")
    return Dictionary(io.StringIO(text))


def attribute_key(name: str) -> int | tuple[int, int]:
    """The key of an attribute in a pyrad packet: its code, or ``(vendor, code)``."""
    return dictionary().attrindex.GetForward(name)


def _new_packet(cls: type, code: int, identifier: int, secret: bytes, authenticator: bytes | None):
    if not 0 <= identifier <= 255:
        raise LocalUsageError(f"RADIUS identifier {identifier} is not 0..255")
    if authenticator is not None and len(authenticator) != 16:
        raise LocalUsageError("a RADIUS authenticator is 16 octets")
    return cls(code=code, id=identifier, secret=bytes(secret), authenticator=authenticator, dict=dictionary())


def _put(pkt, name: str, value) -> None:
    """Append one attribute. Octets go in raw (see the module docstring); the rest through pyrad."""
    attr = pkt.dict.attributes[name]
    if attr.type == "octets":
        raw = bytes(value)
        limit = MAX_VSA_VALUE if attr.vendor else MAX_VALUE
        if len(raw) > limit:
            raise LocalUsageError(f"{name}: {len(raw)} octets do not fit an attribute")
        pkt.setdefault(attribute_key(name), []).append(raw)
    else:
        pkt.AddAttribute(name, value)


def _text(value: str | bytes, limit: int = MAX_VALUE) -> bytes:
    """A string attribute's octets (UTF-8), cut to what fits one attribute."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return raw[:limit]


# --- hiding (RFC 2865 §5.2, RFC 2548 §2.4) --------------------------------------------------------


def _md5_chain(data: bytes, secret: bytes, first: bytes, *, encrypt: bool) -> bytes:
    """The MD5 stream of RFC 2865 §5.2 and RFC 2548 §2.4.2: b(1) = MD5(S + first), b(i) = MD5(S + c(i-1))."""
    out = bytearray()
    last = first
    for i in range(0, len(data), 16):
        block = data[i : i + 16]
        pad = hashlib.md5(secret + last).digest()
        x = bytes(a ^ b for a, b in zip(block, pad))
        out += x
        last = x if encrypt else block
    return bytes(out)


def unhide(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The reverse of the User-Password hiding, binary and with the padding kept (MS-CHAP-MPPE-Keys)."""
    if not value or len(value) % 16:
        raise DecodeError("hidden value is not a multiple of 16 octets", field="length")
    return _md5_chain(value, secret, authenticator, encrypt=False)


def encrypt_salted(plain: bytes, secret: bytes, request_authenticator: bytes, salt: bytes) -> bytes:
    """MS-MPPE-Send/Recv-Key encryption (RFC 2548 §2.4.2): salt + chain(len + key + zero padding).

    ``salt`` is 2 octets from the caller's randomness; its high bit is set here as the RFC requires.
    """
    if len(salt) != 2:
        raise LocalUsageError("the salt is 2 octets")
    if len(plain) > 255:
        raise LocalUsageError("a salted value is at most 255 octets")
    salt = bytes((salt[0] | 0x80, salt[1]))
    data = bytes((len(plain),)) + plain
    data += b"\0" * (-len(data) % 16)
    return salt + _md5_chain(data, secret, request_authenticator + salt, encrypt=True)


def decrypt_salted(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """MS-MPPE-Send/Recv-Key decryption (RFC 2548 §2.4.2/2.4.3), with the Request Authenticator of
    the Access-Request the reply answers. Strict: the salt's high bit and the key length are checked."""
    if len(value) < 18 or (len(value) - 2) % 16:
        raise DecodeError(f"salted value of {len(value)} octets", field="length")
    salt = value[:2]
    if not salt[0] & 0x80:
        raise DecodeError("salt without its high bit (RFC 2548 §2.4.2)", field="salt")
    plain = _md5_chain(value[2:], secret, request_authenticator + salt, encrypt=False)
    n = plain[0]
    if n > len(plain) - 1:
        raise DecodeError(f"key length {n} exceeds the {len(plain) - 1} octets decrypted", field="key length")
    return plain[1 : 1 + n]


def message_authenticator(data: bytes, secret: bytes, vector: bytes) -> bytes:
    """HMAC-MD5 of a packet (RFC 3579 §3.2) with ``vector`` in the authenticator field and the
    Message-Authenticator's value zeroed. ``data`` must hold exactly one Message-Authenticator."""
    attrs = bytearray(data[20:])
    pos = 0
    while pos + 2 <= len(attrs):
        typ, length = attrs[pos], attrs[pos + 1]
        if length < 2:
            break
        if typ == MESSAGE_AUTHENTICATOR and length == 18:
            attrs[pos + 2 : pos + 18] = bytes(16)
            break
        pos += length
    return hmac.new(secret, data[:4] + vector + bytes(attrs), hashlib.md5).digest()


def response_authenticator(data: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret) (RFC 2865 §3)."""
    return hashlib.md5(data[:4] + request_authenticator + data[20:] + secret).digest()


def _request_authenticator_ok(data: bytes, secret: bytes) -> bool:
    """The authenticator of Accounting-Request and Disconnect/CoA-Request (RFC 2866 §3, RFC 5176 §3.5)."""
    expect = hashlib.md5(data[:4] + bytes(16) + data[20:] + secret).digest()
    return hmac.compare_digest(expect, data[4:20])


# --- credentials ---------------------------------------------------------------------------------
# The fields are named as ``fastl2tp.ppp.auth.base``'s credentials, so the runtime converts them with
# ``PapPassword(**dataclasses.asdict(creds))`` without this package importing ppp.


@dataclass(frozen=True, slots=True)
class PapPassword:
    """PAP: User-Password."""

    password: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.password) > MAX_PASSWORD:
            raise AuthError("PAP password longer than 128 octets cannot be sent to RADIUS")


@dataclass(frozen=True, slots=True)
class ChapPassword:
    """CHAP-MD5: CHAP-Password = identifier + response, CHAP-Challenge = challenge (RFC 2865 §5.3, §5.40)."""

    identifier: int
    challenge: bytes
    response: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.response) != 16:
            raise AuthError(f"CHAP response of {len(self.response)} octets, not 16")
        if not 1 <= len(self.challenge) <= MAX_VALUE:
            raise AuthError("CHAP challenge length is not 1..253")


@dataclass(frozen=True, slots=True)
class MsChap1Response:
    """MS-CHAPv1: MS-CHAP-Challenge (8) + MS-CHAP-Response = ident, flags, LM (24), NT (24) (RFC 2548 §2.1.3)."""

    identifier: int
    challenge: bytes
    lm_response: bytes = field(repr=False)
    nt_response: bytes = field(repr=False)
    flags: int

    def __post_init__(self) -> None:
        if len(self.challenge) != 8 or len(self.lm_response) != 24 or len(self.nt_response) != 24:
            raise AuthError("MS-CHAPv1 challenge must be 8 octets, responses 24")


@dataclass(frozen=True, slots=True)
class MsChap2Response:
    """MS-CHAPv2: MS-CHAP-Challenge (16) + MS-CHAP2-Response = ident, flags, peer challenge (16),
    8 reserved zero octets, NT response (24) (RFC 2548 §2.3.2)."""

    identifier: int
    authenticator_challenge: bytes
    peer_challenge: bytes
    nt_response: bytes = field(repr=False)
    flags: int

    def __post_init__(self) -> None:
        if len(self.authenticator_challenge) != 16 or len(self.peer_challenge) != 16 or len(self.nt_response) != 24:
            raise AuthError("MS-CHAPv2 challenges must be 16 octets, the response 24")


Credentials = PapPassword | ChapPassword | MsChap1Response | MsChap2Response


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Nas:
    """Who we are to the server: NAS-IP-Address and/or NAS-Identifier (RFC 2865 §4.1: one at least)."""

    ip_address: IPv4Address | None = None
    identifier: str | None = None
    ipv6_address: IPv6Address | None = None

    def __post_init__(self) -> None:
        if self.ip_address is None and not self.identifier and self.ipv6_address is None:
            raise LocalUsageError("a NAS needs NAS-IP-Address, NAS-IPv6-Address or NAS-Identifier")

    def add_to(self, pkt) -> None:
        if self.ip_address is not None:
            _put(pkt, "NAS-IP-Address", str(self.ip_address))
        if self.ipv6_address is not None:
            _put(pkt, "NAS-IPv6-Address", str(self.ipv6_address))
        if self.identifier:
            _put(pkt, "NAS-Identifier", _text(self.identifier))


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A request as sent: what a reply is checked against.

    message_authenticator: the request carried one. require_message_authenticator: a reply to an
    Access-Request without one is refused (Blast-RADIUS); off only for servers that cannot sign
    (FreeRADIUS before 3.2.5 signs Access-Accept/Reject only with ``Message-Authenticator := 0x00``
    in its reply). A Message-Authenticator that is present is always checked.
    """

    code: Code
    identifier: int
    authenticator: bytes
    data: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    message_authenticator: bool = True
    require_message_authenticator: bool = True


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """An Access-Request of a PPP user (RFC 2865 §4.1), credentials per method.

    Always sent with Service-Type=Framed, Framed-Protocol=PPP, NAS-Port-Type=Virtual and a
    Message-Authenticator (first attribute). Station ids longer than an attribute are cut.
    """

    user_name: bytes | str
    credentials: Credentials
    nas: Nas
    calling_station_id: str | bytes = ""
    called_station_id: str | bytes = ""
    acct_session_id: str = ""
    nas_port: int | None = None
    nas_port_id: str = ""

    def __post_init__(self) -> None:
        if len(_text(self.user_name, 1 << 16)) > MAX_VALUE:
            raise AuthError("user name longer than 253 octets cannot be sent to RADIUS")

    def encode(self, secret: bytes, identifier: int, authenticator: bytes, *, delay_s: float = 0.0,
               require_message_authenticator: bool = True) -> EncodedRequest:
        """The packet for one server: ``authenticator`` is 16 random octets (RFC 2865 §3)."""
        del delay_s  # only accounting says how late it is
        if len(authenticator) != 16:
            raise LocalUsageError("the Request Authenticator is 16 octets")
        pkt = _new_packet(_rp.AuthPacket, Code.ACCESS_REQUEST, identifier, secret, authenticator)
        pkt.add_message_authenticator()
        _put(pkt, "User-Name", _text(self.user_name))
        c = self.credentials
        if isinstance(c, PapPassword):
            pkt.setdefault(attribute_key("User-Password"), []).append(pkt.PwCrypt(c.password))
        elif isinstance(c, ChapPassword):
            _put(pkt, "CHAP-Password", bytes((c.identifier & 0xFF,)) + c.response)
            _put(pkt, "CHAP-Challenge", c.challenge)
        elif isinstance(c, MsChap1Response):
            _put(pkt, "MS-CHAP-Challenge", c.challenge)
            _put(pkt, "MS-CHAP-Response",
                 bytes((c.identifier & 0xFF, c.flags & 0xFF)) + c.lm_response + c.nt_response)
        elif isinstance(c, MsChap2Response):
            _put(pkt, "MS-CHAP-Challenge", c.authenticator_challenge)
            _put(pkt, "MS-CHAP2-Response",
                 bytes((c.identifier & 0xFF, c.flags & 0xFF)) + c.peer_challenge + bytes(8) + c.nt_response)
        else:
            raise LocalUsageError(f"unknown credentials {type(c).__name__}")
        self.nas.add_to(pkt)
        if self.nas_port is not None:
            _put(pkt, "NAS-Port", self.nas_port)
        if self.nas_port_id:
            _put(pkt, "NAS-Port-Id", _text(self.nas_port_id))
        _put(pkt, "NAS-Port-Type", NAS_PORT_TYPE_VIRTUAL)
        _put(pkt, "Service-Type", int(ServiceType.FRAMED))
        _put(pkt, "Framed-Protocol", FRAMED_PROTOCOL_PPP)
        if self.calling_station_id:
            _put(pkt, "Calling-Station-Id", _text(self.calling_station_id))
        if self.called_station_id:
            _put(pkt, "Called-Station-Id", _text(self.called_station_id))
        if self.acct_session_id:
            _put(pkt, "Acct-Session-Id", _text(self.acct_session_id))
        data = pkt.RequestPacket()
        return EncodedRequest(Code.ACCESS_REQUEST, identifier, bytes(authenticator), data, bytes(secret), True,
                              require_message_authenticator)

    def parse_reply(self, sent: EncodedRequest, data: bytes) -> AccessResult:
        return parse_access_reply(sent, data)


@dataclass(frozen=True, slots=True)
class AccountingRequest:
    """An Accounting-Request (RFC 2866 §4.1, RFC 2869 §5.1-5.2 Gigawords).

    Octet counters are totals (any size): the low 32 bits go in Acct-*-Octets, the rest in
    Acct-*-Gigawords. Input is what the NAS received from the user. Packet counters wrap at 2^32.
    ``classes`` are the Class attributes of the Access-Accept, echoed (RFC 2865 §5.25).
    ``event_timestamp`` is wall-clock seconds, given by the caller (this layer has no clock).
    """

    status_type: AcctStatusType
    nas: Nas
    acct_session_id: str = ""
    user_name: bytes | str | None = None
    session_time_s: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    input_packets: int | None = None
    output_packets: int | None = None
    framed_ip_address: IPv4Address | None = None
    classes: tuple[bytes, ...] = ()
    terminate_cause: TerminateCause | None = None
    calling_station_id: str | bytes = ""
    called_station_id: str | bytes = ""
    nas_port: int | None = None
    nas_port_id: str = ""
    authentic: AcctAuthentic | None = None
    event_timestamp: int | None = None
    with_message_authenticator: bool = True

    def __post_init__(self) -> None:
        per_session = self.status_type in (AcctStatusType.START, AcctStatusType.STOP, AcctStatusType.INTERIM_UPDATE)
        if per_session and not self.acct_session_id:
            raise LocalUsageError(f"{self.status_type.name} needs an Acct-Session-Id")
        if self.terminate_cause is not None and self.status_type != AcctStatusType.STOP:
            raise LocalUsageError("Acct-Terminate-Cause goes only in Stop")
        for name in ("input_octets", "output_octets", "input_packets", "output_packets", "session_time_s"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise LocalUsageError(f"{name} is negative")
        for n in (self.input_octets, self.output_octets):
            if n is not None and n >> 64:
                raise LocalUsageError("octet counter beyond 64 bits")

    def encode(self, secret: bytes, identifier: int, authenticator: bytes | None = None, *,
               delay_s: float = 0.0, require_message_authenticator: bool = False) -> EncodedRequest:
        """The packet for one server; its authenticator is computed (``authenticator`` is ignored).
        ``delay_s``: how long it has waited to be sent (Acct-Delay-Time, RFC 2866 §5.2)."""
        del authenticator, require_message_authenticator  # Accounting-Responses are rarely signed
        pkt = _new_packet(_rp.AcctPacket, Code.ACCOUNTING_REQUEST, identifier, secret, None)
        if self.with_message_authenticator:
            pkt.add_message_authenticator()
        _put(pkt, "Acct-Status-Type", int(self.status_type))
        if self.acct_session_id:
            _put(pkt, "Acct-Session-Id", _text(self.acct_session_id))
        if self.user_name:
            _put(pkt, "User-Name", _text(self.user_name))
        self.nas.add_to(pkt)
        if self.nas_port is not None:
            _put(pkt, "NAS-Port", self.nas_port)
        if self.nas_port_id:
            _put(pkt, "NAS-Port-Id", _text(self.nas_port_id))
        if self.status_type not in (AcctStatusType.ACCOUNTING_ON, AcctStatusType.ACCOUNTING_OFF):
            _put(pkt, "NAS-Port-Type", NAS_PORT_TYPE_VIRTUAL)
            _put(pkt, "Service-Type", int(ServiceType.FRAMED))
            _put(pkt, "Framed-Protocol", FRAMED_PROTOCOL_PPP)
        if self.calling_station_id:
            _put(pkt, "Calling-Station-Id", _text(self.calling_station_id))
        if self.called_station_id:
            _put(pkt, "Called-Station-Id", _text(self.called_station_id))
        if self.framed_ip_address is not None:
            _put(pkt, "Framed-IP-Address", str(self.framed_ip_address))
        for c in self.classes:
            _put(pkt, "Class", c)
        if self.authentic is not None:
            _put(pkt, "Acct-Authentic", int(self.authentic))
        if self.session_time_s is not None:
            _put(pkt, "Acct-Session-Time", min(int(self.session_time_s), 0xFFFFFFFF))
        for name, total in (("Input", self.input_octets), ("Output", self.output_octets)):
            if total is not None:
                _put(pkt, f"Acct-{name}-Octets", total & 0xFFFFFFFF)
                _put(pkt, f"Acct-{name}-Gigawords", total >> 32)
        if self.input_packets is not None:
            _put(pkt, "Acct-Input-Packets", self.input_packets & 0xFFFFFFFF)
        if self.output_packets is not None:
            _put(pkt, "Acct-Output-Packets", self.output_packets & 0xFFFFFFFF)
        if self.terminate_cause is not None:
            _put(pkt, "Acct-Terminate-Cause", int(self.terminate_cause))
        if self.event_timestamp is not None:
            _put(pkt, "Event-Timestamp", int(self.event_timestamp))
        _put(pkt, "Acct-Delay-Time", max(0, min(int(delay_s), 0xFFFFFFFF)))
        data = pkt.RequestPacket()
        return EncodedRequest(Code.ACCOUNTING_REQUEST, identifier, bytes(pkt.authenticator), data, bytes(secret),
                              self.with_message_authenticator, False)

    def parse_reply(self, sent: EncodedRequest, data: bytes) -> None:
        parse_accounting_reply(sent, data)


RadiusRequest = AccessRequest | AccountingRequest


# --- replies -------------------------------------------------------------------------------------


def _header(data: bytes) -> tuple[int, int, bytes]:
    """Code, identifier and the packet cut to its Length (padding beyond it ignored, RFC 2865 §3)."""
    if len(data) < 20:
        raise DecodeError(f"RADIUS packet of {len(data)} octets", offset=0, field="header")
    code, identifier, length = struct.unpack_from("!BBH", data)
    if length < 20 or length > len(data) or length > MAX_PACKET:
        raise DecodeError(f"Length {length} with {len(data)} octets received", offset=2, field="length")
    return code, identifier, bytes(data[:length])


def _decode(data: bytes, secret: bytes):
    try:
        return _rp.Packet(id=data[1], secret=bytes(secret), dict=dictionary(), packet=data)
    except _rp.PacketError as e:
        raise DecodeError(str(e), field="attributes") from None


def _ma_values(pkt) -> list[bytes]:
    return list(pkt.get(MESSAGE_AUTHENTICATOR, []))


def _check_message_authenticator(pkt, data: bytes, secret: bytes, vector: bytes, *, required: bool) -> None:
    values = _ma_values(pkt)
    if not values:
        if required:
            raise DecodeError("no Message-Authenticator in the reply (Blast-RADIUS: refused)",
                              field="Message-Authenticator")
        return
    if len(values) > 1 or len(values[0]) != 16:
        raise DecodeError("malformed Message-Authenticator", field="Message-Authenticator")
    if not hmac.compare_digest(values[0], message_authenticator(data, secret, vector)):
        raise DecodeError("wrong Message-Authenticator", field="Message-Authenticator")


def _check_reply(sent: EncodedRequest, data: bytes, codes: frozenset[int]):
    """The checks every reply passes before anything in it is believed. Returns the pyrad packet."""
    code, identifier, data = _header(data)
    if code not in codes:
        raise DecodeError(f"code {code} does not answer {sent.code.name}", offset=0, field="code")
    if identifier != sent.identifier:
        raise DecodeError(f"identifier {identifier} answers no request of ours (sent {sent.identifier})",
                          offset=1, field="identifier")
    if not hmac.compare_digest(data[4:20], response_authenticator(data, sent.secret, sent.authenticator)):
        raise DecodeError("wrong Response Authenticator (another secret, or forged)", offset=4,
                          field="Response Authenticator")
    pkt = _decode(data, sent.secret)
    if sent.code == Code.ACCESS_REQUEST:
        # RFC 3579 §3.2: the Request Authenticator stands in the HMAC of a reply to an Access-Request
        _check_message_authenticator(pkt, data, sent.secret, sent.authenticator,
                                     required=sent.message_authenticator and sent.require_message_authenticator)
        if pkt.get(PROXY_STATE):  # we send none: one in the reply is the Blast-RADIUS signature
            raise DecodeError("Proxy-State in a reply to a request without one", field="Proxy-State")
    else:
        # an Accounting-Response's HMAC is computed with a zero authenticator (as FreeRADIUS and pyrad)
        _check_message_authenticator(pkt, data, sent.secret, bytes(16), required=False)
    return pkt


class _Reader:
    """Typed, strict reads of the raw values of a decoded packet; every failure is a DecodeError."""

    def __init__(self, pkt) -> None:
        self.pkt = pkt

    def raw(self, name: str) -> list[bytes]:
        return [bytes(v) for v in self.pkt.get(attribute_key(name), [])]

    def one(self, name: str) -> bytes | None:
        values = self.raw(name)
        return values[0] if values else None

    def ints(self, name: str) -> list[int]:
        out = []
        for v in self.raw(name):
            if len(v) != 4:
                raise DecodeError(f"{name} of {len(v)} octets, not 4", field=name)
            out.append(struct.unpack("!I", v)[0])
        return out

    def int(self, name: str) -> int | None:
        values = self.ints(name)
        return values[0] if values else None

    def texts(self, name: str) -> list[str]:
        return [v.decode("utf-8", errors="replace") for v in self.raw(name)]

    def text(self, name: str) -> str | None:
        values = self.texts(name)
        return values[0] if values else None

    def ipv4s(self, name: str) -> list[IPv4Address]:
        out = []
        for v in self.raw(name):
            if len(v) != 4:
                raise DecodeError(f"{name} of {len(v)} octets, not 4", field=name)
            out.append(IPv4Address(v))
        return out

    def ipv4(self, name: str) -> IPv4Address | None:
        values = self.ipv4s(name)
        return values[0] if values else None

    def ipv6_prefixes(self, name: str) -> list[IPv6Network]:
        """RFC 3162 §2.3: reserved, prefix length, up to 16 octets of prefix."""
        out = []
        for v in self.raw(name):
            if not 2 <= len(v) <= 18 or v[1] > 128 or len(v) - 2 < (v[1] + 7) // 8:
                raise DecodeError(f"malformed {name}", field=name)
            out.append(IPv6Network((IPv6Address(v[2:].ljust(16, b"\0")), v[1]), strict=False))
        return out


# 127/8 and 224/3 (which holds 255.255.255.254, RFC 2865's "NAS should select") mean "from the pool"
POOL_MARKERS = (ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv4Network("224.0.0.0/3"))
_MSCHAP_ERROR = re.compile(r"E=(\d+)")


@dataclass(frozen=True, slots=True)
class AccessResult:
    """What an Access-Accept grants, or why access was refused.

    accepted: Access-Accept; an Access-Reject, or an Access-Challenge (not supported for PPP), is False
        with ``reason``.
    framed_ip_address: the peer's address; None when absent or a pool marker (127/8, 224/3): then
        ``framed_pool`` or the profile's pool decides.
    mschap2_success: MS-CHAP2-Success without its identifier octet: "S=<40 hex>", the authenticator
        response for the peer.
    mschap_error: MS-CHAP-Error without its identifier octet ("E=691 R=0 ..."), for the Failure packet.
    mppe_send_key / mppe_recv_key: decrypted MS-MPPE-Send/Recv-Key, as the NAS uses them (send: NAS to
        peer, RFC 2548 §2.4.2).
    mschap_mppe_keys: MS-CHAPv1's MS-CHAP-MPPE-Keys decrypted: (LM key (8), NT key (16)); FreeRADIUS sends
        the NT password hash hash as the NT key, which is what RFC 3079 §2.4 derives MPPE keys from.
    """

    accepted: bool
    code: Code
    reason: str = ""
    framed_ip_address: IPv4Address | None = None
    framed_ip_netmask: IPv4Address | None = None
    framed_pool: str | None = None
    framed_routes: tuple[str, ...] = ()
    framed_mtu: int | None = None
    framed_ipv6_prefixes: tuple[IPv6Network, ...] = ()
    framed_ipv6_routes: tuple[str, ...] = ()
    framed_ipv6_pool: str | None = None
    delegated_ipv6_prefix: IPv6Network | None = None
    session_timeout_s: int | None = None
    idle_timeout_s: int | None = None
    acct_interim_interval_s: int | None = None
    classes: tuple[bytes, ...] = ()
    reply_messages: tuple[str, ...] = ()
    mschap2_success: str | None = None
    mschap_error: str | None = None
    mppe_send_key: bytes | None = field(default=None, repr=False)
    mppe_recv_key: bytes | None = field(default=None, repr=False)
    mschap_mppe_keys: tuple[bytes, bytes] | None = field(default=None, repr=False)
    mppe_encryption_policy: int | None = None
    mppe_encryption_types: int | None = None
    mikrotik_group: str | None = None
    mikrotik_rate_limit: str | None = None
    mikrotik_address_list: str | None = None
    mikrotik_delegated_ipv6_pool: str | None = None

    @property
    def reply_message(self) -> str | None:
        """The Reply-Message attributes joined (RFC 2865 §5.18: several are concatenated)."""
        return "".join(self.reply_messages) if self.reply_messages else None

    @property
    def mschap_error_code(self) -> int | None:
        """The ``E=`` of MS-CHAP-Error (691 authentication failure, 647 disabled, 648 expired...)."""
        m = _MSCHAP_ERROR.search(self.mschap_error or "")
        return int(m.group(1)) if m else None

    @property
    def mppe_required(self) -> bool:
        return self.mppe_encryption_policy == MppeEncryptionPolicy.REQUIRED


def _after_ident(value: bytes | None, name: str) -> str | None:
    """MS-CHAP-Error and MS-CHAP2-Success: one identifier octet, then text (RFC 2548 §2.1.5, §2.3.3)."""
    if value is None:
        return None
    if len(value) < 1:
        raise DecodeError(f"empty {name}", field=name)
    return value[1:].decode("ascii", errors="replace")


def _read_access_result(pkt, sent: EncodedRequest) -> AccessResult:
    r = _Reader(pkt)
    code = Code(pkt.code)
    common = {
        "code": code,
        "reply_messages": tuple(r.texts("Reply-Message")),
        "mschap_error": _after_ident(r.one("MS-CHAP-Error"), "MS-CHAP-Error"),
    }
    if code == Code.ACCESS_REJECT:
        return AccessResult(False, reason="Access-Reject", **common)
    if code == Code.ACCESS_CHALLENGE:
        return AccessResult(False, reason="Access-Challenge is not supported for PPP", **common)
    address = r.ipv4("Framed-IP-Address")
    if address is not None and any(address in net for net in POOL_MARKERS):
        address = None
    send = r.one("MS-MPPE-Send-Key")
    recv = r.one("MS-MPPE-Recv-Key")
    v1 = r.one("MS-CHAP-MPPE-Keys")
    v1_keys = None
    if v1 is not None:
        plain = unhide(v1, sent.secret, sent.authenticator)
        if len(plain) < 24:
            raise DecodeError("MS-CHAP-MPPE-Keys shorter than 24 octets", field="MS-CHAP-MPPE-Keys")
        v1_keys = (plain[:8], plain[8:24])
    delegated = r.ipv6_prefixes("Delegated-IPv6-Prefix")
    return AccessResult(
        True,
        framed_ip_address=address,
        framed_ip_netmask=r.ipv4("Framed-IP-Netmask"),
        framed_pool=r.text("Framed-Pool"),
        framed_routes=tuple(r.texts("Framed-Route")),
        framed_mtu=r.int("Framed-MTU"),
        framed_ipv6_prefixes=tuple(r.ipv6_prefixes("Framed-IPv6-Prefix")),
        framed_ipv6_routes=tuple(r.texts("Framed-IPv6-Route")),
        framed_ipv6_pool=r.text("Framed-IPv6-Pool"),
        delegated_ipv6_prefix=delegated[0] if delegated else None,
        session_timeout_s=r.int("Session-Timeout"),
        idle_timeout_s=r.int("Idle-Timeout"),
        acct_interim_interval_s=r.int("Acct-Interim-Interval"),
        classes=tuple(r.raw("Class")),
        mschap2_success=_after_ident(r.one("MS-CHAP2-Success"), "MS-CHAP2-Success"),
        mppe_send_key=None if send is None else decrypt_salted(send, sent.secret, sent.authenticator),
        mppe_recv_key=None if recv is None else decrypt_salted(recv, sent.secret, sent.authenticator),
        mschap_mppe_keys=v1_keys,
        mppe_encryption_policy=r.int("MS-MPPE-Encryption-Policy"),
        mppe_encryption_types=r.int("MS-MPPE-Encryption-Types"),
        mikrotik_group=r.text("Mikrotik-Group"),
        mikrotik_rate_limit=r.text("Mikrotik-Rate-Limit"),
        mikrotik_address_list=r.text("Mikrotik-Address-List"),
        mikrotik_delegated_ipv6_pool=r.text("Mikrotik-Delegated-IPv6-Pool"),
        **common,
    )


_ACCESS_REPLIES = frozenset((Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE))
_ACCOUNTING_REPLIES = frozenset((Code.ACCOUNTING_RESPONSE,))


def parse_access_reply(sent: EncodedRequest, data: bytes) -> AccessResult:
    """Check a reply to ``sent`` (an Access-Request) and read it. Raises ``DecodeError`` with the reason
    for anything not to be believed: wrong code or identifier, wrong Response Authenticator, missing
    or wrong Message-Authenticator, unsolicited Proxy-State, malformed attributes."""
    if sent.code != Code.ACCESS_REQUEST:
        raise LocalUsageError("not an Access-Request")
    return _read_access_result(_check_reply(sent, data, _ACCESS_REPLIES), sent)


def parse_accounting_reply(sent: EncodedRequest, data: bytes) -> None:
    """Check an Accounting-Response to ``sent``; returns nothing, raises ``DecodeError``."""
    if sent.code != Code.ACCOUNTING_REQUEST:
        raise LocalUsageError("not an Accounting-Request")
    _check_reply(sent, data, _ACCOUNTING_REPLIES)


def peek(data: bytes) -> tuple[int, int]:
    """Code and identifier of a datagram, without believing anything else of it."""
    code, identifier, _ = _header(data)
    return code, identifier


# --- dynamic authorization (RFC 5176) ------------------------------------------------------------

_DYNAUTH_REQUESTS = frozenset((Code.DISCONNECT_REQUEST, Code.COA_REQUEST))
# what identifies a session or the NAS, and what a CoA may change: everything else is "other"
_DYNAUTH_KNOWN = frozenset((
    "User-Name", "Acct-Session-Id", "Framed-IP-Address", "NAS-IP-Address", "NAS-IPv6-Address",
    "NAS-Identifier", "Calling-Station-Id", "Called-Station-Id", "NAS-Port", "NAS-Port-Id",
    "NAS-Port-Type", "Session-Timeout", "Idle-Timeout", "Mikrotik-Rate-Limit", "Service-Type",
    "State", "Proxy-State", "Message-Authenticator", "Event-Timestamp", "Acct-Interim-Interval",
    "Class", "Reply-Message", MESSAGE_AUTHENTICATOR,
))


@dataclass(frozen=True, slots=True)
class DynAuthRequest:
    """A Disconnect-Request or CoA-Request whose authenticator checked out (RFC 5176 §3).

    Session identification: ``user_name``, ``acct_session_id``, ``framed_ip_address`` (and the
    station ids). NAS identification: ``nas_ip_address``/``nas_identifier`` (a mismatch is NAKed with
    NAS-Identification-Mismatch by the runtime). CoA changes: ``session_timeout_s``,
    ``idle_timeout_s``, ``mikrotik_rate_limit``. ``other_attributes`` names what we do not act on
    (numbers for attributes not in the dictionary), for an Unsupported-Attribute NAK if wanted.
    """

    code: Code
    identifier: int
    authenticator: bytes
    user_name: bytes | None = None
    acct_session_id: str | None = None
    framed_ip_address: IPv4Address | None = None
    nas_ip_address: IPv4Address | None = None
    nas_identifier: str | None = None
    calling_station_id: str | None = None
    called_station_id: str | None = None
    session_timeout_s: int | None = None
    idle_timeout_s: int | None = None
    acct_interim_interval_s: int | None = None
    mikrotik_rate_limit: str | None = None
    service_type: int | None = None
    state: bytes | None = None
    proxy_states: tuple[bytes, ...] = ()
    other_attributes: tuple[str | int | tuple[int, int], ...] = ()

    @property
    def is_disconnect(self) -> bool:
        return self.code == Code.DISCONNECT_REQUEST


def parse_dynauth_request(data: bytes, secret: bytes) -> DynAuthRequest:
    """Check (Request Authenticator, RFC 5176 §3.5; Message-Authenticator if present) and read a
    Disconnect-Request or CoA-Request. Raises ``DecodeError``: the runtime drops and counts it."""
    code, identifier, data = _header(data)
    if code not in _DYNAUTH_REQUESTS:
        raise DecodeError(f"code {code} is not a Disconnect-Request or CoA-Request", offset=0, field="code")
    if not _request_authenticator_ok(data, bytes(secret)):
        raise DecodeError("wrong Request Authenticator (another secret, or forged)", offset=4,
                          field="Request Authenticator")
    pkt = _decode(data, secret)
    _check_message_authenticator(pkt, data, bytes(secret), bytes(16), required=False)
    r = _Reader(pkt)
    # pyrad's keys() names the attributes of the dictionary (iterating gives codes); others stay
    # numbers (or (vendor, type))
    other = [name for name in pkt.keys() if name not in _DYNAUTH_KNOWN]  # noqa: SIM118
    return DynAuthRequest(
        code=Code(code),
        identifier=identifier,
        authenticator=data[4:20],
        user_name=r.one("User-Name"),
        acct_session_id=r.text("Acct-Session-Id"),
        framed_ip_address=r.ipv4("Framed-IP-Address"),
        nas_ip_address=r.ipv4("NAS-IP-Address"),
        nas_identifier=r.text("NAS-Identifier"),
        calling_station_id=r.text("Calling-Station-Id"),
        called_station_id=r.text("Called-Station-Id"),
        session_timeout_s=r.int("Session-Timeout"),
        idle_timeout_s=r.int("Idle-Timeout"),
        acct_interim_interval_s=r.int("Acct-Interim-Interval"),
        mikrotik_rate_limit=r.text("Mikrotik-Rate-Limit"),
        service_type=r.int("Service-Type"),
        state=r.one("State"),
        proxy_states=tuple(r.raw("Proxy-State")),
        other_attributes=tuple(other),
    )


def encode_dynauth_reply(request: DynAuthRequest, secret: bytes, *, ack: bool,
                         error_cause: ErrorCause | None = None, with_message_authenticator: bool = True) -> bytes:
    """Disconnect-ACK/NAK or CoA-ACK/NAK to ``request`` (RFC 5176 §2.1-2.2), Proxy-State echoed,
    Error-Cause if given (§3.6), signed with the request's authenticator (and a Message-Authenticator)."""
    code = {(True, True): Code.DISCONNECT_ACK, (True, False): Code.DISCONNECT_NAK,
            (False, True): Code.COA_ACK, (False, False): Code.COA_NAK}[(request.is_disconnect, ack)]
    req = _new_packet(_rp.CoAPacket, request.code, request.identifier, secret, request.authenticator)
    for ps in request.proxy_states:
        _put(req, "Proxy-State", ps)
    reply = req.CreateReply()
    reply.code = int(code)
    if error_cause is not None:
        _put(reply, "Error-Cause", int(error_cause))
    if with_message_authenticator:
        reply.add_message_authenticator()
    return reply.ReplyPacket()
