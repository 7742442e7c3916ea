"""PPP authentication: the methods as LCP names them, and (below) the PAP/CHAP packet codecs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..errors import DecodeError
from .buffer import Reader, Writer

PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223
PROTO_EAP = 0xC227

CHAP_ALGO_MD5 = 0x05
CHAP_ALGO_MSCHAP1 = 0x80
CHAP_ALGO_MSCHAP2 = 0x81


class AuthMethod(enum.Enum):
    """An authentication method; ``.value`` is its RouterOS name (`authentication=` / `allow=`)."""

    PAP = "pap"
    CHAP = "chap"  # CHAP with MD5 (RFC 1994)
    MSCHAP1 = "mschap1"  # RFC 2433
    MSCHAP2 = "mschap2"  # RFC 2759

    @property
    def protocol(self) -> int:
        return PROTO_PAP if self is AuthMethod.PAP else PROTO_CHAP

    @property
    def lcp_data(self) -> bytes:
        """The value of the LCP Authentication-Protocol option (type 3) that asks for this method."""
        if self is AuthMethod.PAP:
            return PROTO_PAP.to_bytes(2, "big")
        return PROTO_CHAP.to_bytes(2, "big") + bytes((_CHAP_ALGO[self],))

    @classmethod
    def from_lcp_data(cls, data: bytes) -> "AuthMethod | None":
        """The method an Authentication-Protocol option value names, or None if we do not know it."""
        if data == PROTO_PAP.to_bytes(2, "big"):
            return cls.PAP
        if len(data) == 3 and int.from_bytes(data[:2], "big") == PROTO_CHAP:
            for method, algo in _CHAP_ALGO.items():
                if algo == data[2]:
                    return method
        return None


_CHAP_ALGO = {
    AuthMethod.CHAP: CHAP_ALGO_MD5,
    AuthMethod.MSCHAP1: CHAP_ALGO_MSCHAP1,
    AuthMethod.MSCHAP2: CHAP_ALGO_MSCHAP2,
}


# --- PAP (RFC 1334 §2.2) ---------------------------------------------------------------------


class PapCode(enum.IntEnum):
    AUTHENTICATE_REQUEST = 1
    AUTHENTICATE_ACK = 2
    AUTHENTICATE_NAK = 3


@dataclass(frozen=True, slots=True)
class PapRequest:
    """Authenticate-Request: the peer's name and its password in clear."""

    identifier: int
    peer_id: bytes
    password: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PapReply:
    """Authenticate-Ack or -Nak with its message."""

    code: PapCode
    identifier: int
    message: bytes = b""


def _header(data: bytes | bytearray | memoryview, what: str) -> tuple[Reader, int, int]:
    """Read Code, Identifier, Length (§ common to PAP and CHAP); returns a reader bounded by Length."""
    raw = bytes(data)
    r = Reader(raw)
    code = r.u8(f"{what}.code")
    identifier = r.u8(f"{what}.identifier")
    length = r.u16(f"{what}.length")
    if length < 4 or length > len(raw):
        raise DecodeError(f"bad length {length} for {len(raw)} octets", offset=2, field=f"{what}.length")
    return Reader(raw, 4, length), code, identifier


def _packet(code: int, identifier: int, body: bytes) -> bytes:
    if not 0 <= identifier <= 255:
        raise ValueError("identifier must fit one octet")
    if len(body) + 4 > 0xFFFF:
        raise ValueError("packet too long")
    w = Writer()
    w.u8(code)
    w.u8(identifier)
    w.u16(4 + len(body))
    w.bytes(body)
    return w.getvalue()


def _short(value: bytes, what: str) -> bytes:
    if len(value) > 255:
        raise ValueError(f"{what} longer than 255 octets")
    return bytes((len(value),)) + value


def decode_pap(data: bytes | bytearray | memoryview) -> PapRequest | PapReply:
    """Decode a PAP packet (the payload of PPP protocol 0xC023). Octets past Length are padding.

    An Ack or Nak of Length 4, without the Msg-Length octet, is accepted with an empty message
    (SoftEther sends its Ack that way).
    """
    r, code, identifier = _header(data, "pap")
    if code == PapCode.AUTHENTICATE_REQUEST:
        peer_id = r.bytes(r.u8("pap.peer_id_length"), "pap.peer_id")
        password = r.bytes(r.u8("pap.passwd_length"), "pap.password")
        return PapRequest(identifier, peer_id, password)
    if code in (PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK):
        message = b"" if r.eof() else r.bytes(r.u8("pap.msg_length"), "pap.message")
        return PapReply(PapCode(code), identifier, message)
    raise DecodeError(f"unknown PAP code {code}", offset=0, field="pap.code")


def encode_pap(packet: PapRequest | PapReply) -> bytes:
    if isinstance(packet, PapRequest):
        body = _short(packet.peer_id, "peer-id") + _short(packet.password, "password")
        return _packet(PapCode.AUTHENTICATE_REQUEST, packet.identifier, body)
    if packet.code not in (PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK):
        raise ValueError("a PapReply is an Ack or a Nak")
    return _packet(packet.code, packet.identifier, _short(packet.message, "message"))


# --- CHAP (RFC 1994 §4) ----------------------------------------------------------------------


class ChapCode(enum.IntEnum):
    CHALLENGE = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


@dataclass(frozen=True, slots=True)
class ChapChallenge:
    """Challenge (code 1): the value and the authenticator's name."""

    identifier: int
    value: bytes
    name: bytes = b""


@dataclass(frozen=True, slots=True)
class ChapResponse:
    """Response (code 2): the value (MD5 digest or MS-CHAP response block) and the peer's name."""

    identifier: int
    value: bytes = field(repr=False)
    name: bytes = b""


@dataclass(frozen=True, slots=True)
class ChapStatus:
    """Success (3) or Failure (4) with its message (for MS-CHAP, the ``S=``/``E=`` text)."""

    code: ChapCode
    identifier: int
    message: bytes = b""


def decode_chap(data: bytes | bytearray | memoryview) -> ChapChallenge | ChapResponse | ChapStatus:
    """Decode a CHAP packet (the payload of PPP protocol 0xC223). Codes other than 1-4 (the MS-CHAP
    Change-Password packets 5-7 included) raise DecodeError."""
    r, code, identifier = _header(data, "chap")
    if code in (ChapCode.CHALLENGE, ChapCode.RESPONSE):
        value = r.bytes(r.u8("chap.value_size"), "chap.value")
        name = r.rest()
        cls = ChapChallenge if code == ChapCode.CHALLENGE else ChapResponse
        return cls(identifier, value, name)
    if code in (ChapCode.SUCCESS, ChapCode.FAILURE):
        return ChapStatus(ChapCode(code), identifier, r.rest())
    raise DecodeError(f"unknown CHAP code {code}", offset=0, field="chap.code")


def encode_chap(packet: ChapChallenge | ChapResponse | ChapStatus) -> bytes:
    if isinstance(packet, ChapStatus):
        if packet.code not in (ChapCode.SUCCESS, ChapCode.FAILURE):
            raise ValueError("a ChapStatus is a Success or a Failure")
        return _packet(packet.code, packet.identifier, packet.message)
    code = ChapCode.CHALLENGE if isinstance(packet, ChapChallenge) else ChapCode.RESPONSE
    return _packet(code, packet.identifier, _short(packet.value, "value") + packet.name)


# --- MS-CHAP response values (RFC 2433 §4, RFC 2759 §4) ---------------------------------------

MSCHAP1_CHALLENGE_LEN = 8
MSCHAP2_CHALLENGE_LEN = 16
MSCHAP_RESPONSE_LEN = 49
MSCHAP1_FLAG_USE_NT = 0x01


@dataclass(frozen=True, slots=True)
class MsChap1Response:
    """The 49-octet MS-CHAPv1 Response value: LM-Response, NT-Response, Flags (bit 0: use the NT response)."""

    lm_response: bytes = field(repr=False)
    nt_response: bytes = field(repr=False)
    flags: int = MSCHAP1_FLAG_USE_NT

    @property
    def use_nt(self) -> bool:
        return bool(self.flags & MSCHAP1_FLAG_USE_NT)


@dataclass(frozen=True, slots=True)
class MsChap2Response:
    """The 49-octet MS-CHAPv2 Response value: Peer-Challenge, 8 reserved octets (zero), NT-Response, Flags (zero)."""

    peer_challenge: bytes
    nt_response: bytes = field(repr=False)
    flags: int = 0
    reserved: bytes = bytes(8)


def decode_mschap1_response(value: bytes) -> MsChap1Response:
    if len(value) != MSCHAP_RESPONSE_LEN:
        raise DecodeError(f"MS-CHAPv1 response is {len(value)} octets, not 49", offset=0, field="mschap1.response")
    return MsChap1Response(bytes(value[0:24]), bytes(value[24:48]), value[48])


def encode_mschap1_response(resp: MsChap1Response) -> bytes:
    if len(resp.lm_response) != 24 or len(resp.nt_response) != 24 or not 0 <= resp.flags <= 255:
        raise ValueError("MS-CHAPv1 response needs 24-octet LM and NT responses and a one-octet flags field")
    return resp.lm_response + resp.nt_response + bytes((resp.flags,))


def decode_mschap2_response(value: bytes) -> MsChap2Response:
    if len(value) != MSCHAP_RESPONSE_LEN:
        raise DecodeError(f"MS-CHAPv2 response is {len(value)} octets, not 49", offset=0, field="mschap2.response")
    return MsChap2Response(bytes(value[0:16]), bytes(value[24:48]), value[48], bytes(value[16:24]))


def encode_mschap2_response(resp: MsChap2Response) -> bytes:
    if len(resp.peer_challenge) != 16 or len(resp.nt_response) != 24 or len(resp.reserved) != 8:
        raise ValueError("MS-CHAPv2 response needs a 16-octet peer challenge and a 24-octet NT response")
    if not 0 <= resp.flags <= 255:
        raise ValueError("flags must fit one octet")
    return resp.peer_challenge + resp.reserved + resp.nt_response + bytes((resp.flags,))


# --- MS-CHAP Failure and Success messages (RFC 2433 §6, RFC 2759 §5-6) ------------------------

MSCHAP_ERRORS = {
    646: "restricted logon hours",
    647: "account disabled",
    648: "password expired",
    649: "no dial-in permission",
    691: "authentication failure",
    709: "error changing password",
}
"""The E= codes of RFC 2433 §6 / RFC 2759 §6, with the words we log them with."""

ERROR_AUTHENTICATION_FAILURE = 691


@dataclass(frozen=True, slots=True)
class MsChapFailure:
    """``E=eeee R=r C=cccc V=vvvv M=text``: every field but E optional (None = absent).

    ``challenge`` is the new challenge (16 octets for v2, 8 for v1); ``message`` runs to the end of the text.
    """

    error: int
    retry: bool | None = None
    challenge: bytes | None = None
    version: int | None = None
    message: str | None = None

    @property
    def reason(self) -> str:
        """Loggable text such as ``E=691 authentication failure``."""
        text = f"E={self.error} {MSCHAP_ERRORS.get(self.error, 'error')}"
        return f"{text}: {self.message}" if self.message else text


def _text(data: bytes | str) -> str:
    return data if isinstance(data, str) else bytes(data).decode("utf-8", errors="replace")


def _hex(value: str, field_name: str) -> bytes:
    if len(value) % 2 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
        raise DecodeError(f"{field_name} is not hex", field=field_name)
    return bytes.fromhex(value)


def _int(value: str, field_name: str) -> int:
    if not value.isdigit() or not value.isascii() or len(value) > 10:
        raise DecodeError(f"{field_name} is not a decimal number", field=field_name)
    return int(value)


def parse_mschap_failure(data: bytes | str) -> MsChapFailure:
    """Parse an MS-CHAP Failure message (v1 or v2). Unknown ``X=`` fields are skipped; E is required."""
    text = _text(data)
    fields: dict[str, str] = {}
    message: str | None = None
    pos = 0
    while pos < len(text):
        if text[pos] == " ":
            pos += 1
            continue
        if text.startswith("M=", pos):
            message = text[pos + 2 :]
            break
        end = text.find(" ", pos)
        end = len(text) if end < 0 else end
        token = text[pos:end]
        pos = end
        if len(token) >= 2 and token[1] == "=":
            fields.setdefault(token[0], token[2:])
    if "E" not in fields:
        raise DecodeError("MS-CHAP failure without E=", field="mschap.failure")
    error = _int(fields["E"], "mschap.failure.E")
    retry = None
    if "R" in fields:
        if fields["R"] not in ("0", "1"):
            raise DecodeError("R= is neither 0 nor 1", field="mschap.failure.R")
        retry = fields["R"] == "1"
    challenge = _hex(fields["C"], "mschap.failure.C") if "C" in fields else None
    version = _int(fields["V"], "mschap.failure.V") if "V" in fields else None
    return MsChapFailure(error, retry, challenge, version, message)


def format_mschap_failure(failure: MsChapFailure) -> bytes:
    """``E=691 R=0 C=<hex> V=3`` (absent fields left out), then `` M=text`` when there is a message."""
    parts = [f"E={failure.error}"]
    if failure.retry is not None:
        parts.append(f"R={int(failure.retry)}")
    if failure.challenge is not None:
        parts.append(f"C={failure.challenge.hex().upper()}")
    if failure.version is not None:
        parts.append(f"V={failure.version}")
    if failure.message is not None:
        parts.append(f"M={failure.message}")
    return " ".join(parts).encode("utf-8")


@dataclass(frozen=True, slots=True)
class MsChap2Success:
    """``S=<40 hex> M=text``: the 20-octet authenticator response and an optional message.

    ``message`` None means no `` M=`` part at all (SoftEther, and what we send to Windows 98 peers).
    """

    authenticator_response: bytes
    message: str | None = None


def parse_mschap2_success(data: bytes | str) -> MsChap2Success:
    text = _text(data)
    if not text.startswith("S=") or len(text) < 42:
        raise DecodeError("MS-CHAPv2 success without S=<40 hex>", field="mschap2.success")
    auth = _hex(text[2:42], "mschap2.success.S")
    rest = text[42:]
    message = None
    if rest.strip(" "):
        rest = rest.lstrip(" ")
        if not rest.startswith("M="):
            raise DecodeError("unexpected text after S=", field="mschap2.success")
        message = rest[2:]
    return MsChap2Success(auth, message)


def format_mschap2_success(success: MsChap2Success) -> bytes:
    if len(success.authenticator_response) != 20:
        raise ValueError("the authenticator response is 20 octets")
    text = "S=" + success.authenticator_response.hex().upper()
    if success.message is not None:
        text += " M=" + success.message
    return text.encode("utf-8")
