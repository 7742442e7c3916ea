"""BCP, the Bridging Control Protocol (RFC 3518; RFC 1638 for the options RFC 3518 keeps): Ethernet
bridging over the link, on the shared automaton. The bridged frames themselves (protocol 0x0031) are
``wire.bcp``'s.

Options (RFC 3518 §5) and what we do with the peer's request / what we ask for:

==  =============================  =========================================================================
 1  Bridge-Identification          rejected: source-route bridging only, which we do not do
 2  Line-Identification            rejected: source-route bridging only
 3  MAC-Support                    the MAC types the sender receives; may repeat. Ours: IEEE 802.3 (we only
                                   take Ethernet, ``mac_support``). The peer's: every defined type acked (it
                                   only informs us; we only ever send 802.3), reserved values rejected
 4  Tinygram-Compression           1 enabled / 2 disabled: the sender of the option can restore a tinygram's
                                   zero pad (Z flag). Asked for only with ``tinygram`` (off by default: we
                                   send full frames; received Z frames are restored anyway). The peer's 1 or
                                   2 acked: it permits us to compress, which we never need to
 5  LAN-Identification             rejected: obsolete (RFC 1638 only; its I flag never appears)
 6  MAC-Address                    ours announced with ``mac_address`` (all zeros: "assign me one", the
                                   peer's Nak taken). The peer's unicast address acked; zeros, a multicast
                                   address or our own address is Nak'd with ``assign_mac_address`` when set,
                                   else rejected
 7  Spanning-Tree-Protocol         old format; never asked for (Management-Inline replaces it). The peer's
                                   acked for any defined protocol (``accept_spanning_tree``; said to be
                                   RouterOS's way), else Nak'd to 0 (Null); undefined protocol ids rejected
 8  IEEE-802-Tagged-Frame          1 enabled / 2 disabled: the sender receives 802.1Q-tagged frames. Ours
                                   enabled with ``tagged_frames`` (a TAP in a Linux bridge passes tags);
                                   the peer's 1 or 2 acked and reported
 9  Management-Inline              the sender takes bridge management (BPDUs) inline as bridged frames,
                                   which is what a TAP port does: asked for (``management_inline``) and acked
10  Bridge-Control-Packet-Ind.     the peer wants B set on bridge control packets we send: acked
                                   (``accept_bridge_control_indicator``; ``wire.bcp.is_bridge_control``
                                   tells the data path which frames); never asked for, B is accepted anyway
 *  anything else                  rejected with its raw bytes (the automaton does it)
==  =============================  =========================================================================

A Nak of one of our options we cannot follow drops the option (none of them is essential: without
MAC-Support the peer sends all types and we drop the others; without Management-Inline a peer may send
old-format BPDUs (protocol 0x0201), which the link Protocol-Rejects). LayerUp's ``values`` is
:class:`BcpValues`. No RouterOS capture of BCP exists yet: the RouterOS behaviour here is unverified.

The LAN FCS (F flag) is per frame and not negotiated: the receiver takes frames with and without it.
``send_lan_fcs`` only says what we send (default without: TAP frames have no FCS).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng

from ..errors import DecodeError
from ..wire.bcp import MAC_TYPES, MacType
from ..wire.ppp import CpPacket, Option, Protocol
from .fsm import ControlProtocol, CpTimers, Rng
from .options import (
    ACK,
    REJECT,
    Judgement,
    OptionSpec,
    OptionTable,
    fixed,
    flag,
    nak,
    raw,
)

__all__ = [
    "BCP_OPTIONS",
    "DISABLED",
    "ENABLED",
    "ZERO_MAC",
    "Bcp",
    "BcpConfig",
    "BcpOption",
    "BcpValues",
    "SpanningTree",
    "format_mac",
    "is_unicast_mac",
]

ZERO_MAC = bytes(6)
ENABLED, DISABLED = 1, 2  # values of Tinygram-Compression and IEEE-802-Tagged-Frame


class BcpOption(enum.IntEnum):
    """BCP configuration option types (RFC 3518 §5; IANA "PPP BCP Configuration Option Types")."""

    BRIDGE_IDENTIFICATION = 1
    LINE_IDENTIFICATION = 2
    MAC_SUPPORT = 3
    TINYGRAM_COMPRESSION = 4
    LAN_IDENTIFICATION = 5  # RFC 1638 only (obsolete)
    MAC_ADDRESS = 6
    SPANNING_TREE_PROTOCOL = 7  # the old format
    IEEE_802_TAGGED_FRAME = 8
    MANAGEMENT_INLINE = 9
    BRIDGE_CONTROL_PACKET_INDICATOR = 10


class SpanningTree(enum.IntEnum):
    """Protocol ids of the Spanning-Tree-Protocol option (IANA PPP numbers, RFC 3518)."""

    NULL = 0  # no spanning tree protocol
    IEEE_802_1D = 1
    IEEE_802_1G = 2  # extended
    IBM_SOURCE_ROUTE = 3
    DEC_LANBRIDGE_100 = 4


_SPANNING_TREES = frozenset(int(s) for s in SpanningTree)


def is_unicast_mac(mac: bytes) -> bool:
    """Six octets, not all zero, group bit (least significant bit of the first octet) clear."""
    return len(mac) == 6 and mac != ZERO_MAC and not mac[0] & 0x01


def format_mac(mac: bytes | None) -> str:
    return "" if mac is None else ":".join(f"{b:02X}" for b in mac)


@dataclass(frozen=True, slots=True)
class BcpConfig:
    """What we ask for and what we accept (see the module docstring).

    mac_support: announce MAC-Support IEEE 802.3 (we take only Ethernet frames).
    tinygram: ask for Tinygram-Compression (the peer may then send Z frames; we restore them anyway).
    tagged_frames: announce IEEE-802-Tagged-Frame enabled (None: do not send the option).
    management_inline: ask for Management-Inline (BPDUs as ordinary bridged frames).
    mac_address: our MAC address to announce; ``ZERO_MAC`` asks the peer to assign one; None: no option.
    assign_mac_address: the address we give a peer that asks for one (or announces a multicast or our
      own address); None: such a request is rejected.
    accept_spanning_tree: ack the peer's Spanning-Tree-Protocol, whatever protocol (RouterOS); False:
      Nak it to Null.
    accept_bridge_control_indicator: ack the peer's Bridge-Control-Packet-Indicator (we then mark bridge
      control packets with B); False: reject it.
    send_lan_fcs: our bridged frames carry the LAN FCS (F). Not negotiated; reported in the values.
    """

    mac_support: bool = True
    tinygram: bool = False
    tagged_frames: bool | None = True
    management_inline: bool = True
    mac_address: bytes | None = None
    assign_mac_address: bytes | None = None
    accept_spanning_tree: bool = True
    accept_bridge_control_indicator: bool = True
    send_lan_fcs: bool = False
    timers: CpTimers = field(default_factory=CpTimers)

    def __post_init__(self) -> None:
        if self.mac_address is not None and self.mac_address != ZERO_MAC and not is_unicast_mac(self.mac_address):
            raise ValueError(f"BcpConfig: mac_address {self.mac_address!r} is not a unicast MAC address")
        if self.assign_mac_address is not None and not is_unicast_mac(self.assign_mac_address):
            raise ValueError(f"BcpConfig: assign_mac_address {self.assign_mac_address!r} is not a unicast "
                             "MAC address")
        if self.assign_mac_address is not None and self.assign_mac_address == self.mac_address:
            raise ValueError("BcpConfig: assign_mac_address is our own mac_address")


@dataclass(frozen=True, slots=True)
class BcpValues:
    """What BCP settled, for the data path and the bridge port.

    mac_types: the MAC types we announced and the peer acked (what it may send us); () = none announced.
    peer_mac_types: the MAC types the peer announced; () = it announced none, so it takes every type.
    tinygram: we enabled Tinygram-Compression: the peer may send Z frames. peer_tinygram: the peer
      enabled it: we may compress (we need not).
    tagged / peer_tagged: IEEE-802-Tagged-Frame as announced by us / by the peer (True enabled, False
      disabled, None not negotiated).
    management_inline / peer_management_inline: Management-Inline asked for by us / by the peer.
    bridge_control_indicator: the peer asked for the B flag and we acked: mark bridge control packets.
    peer_spanning_tree: the peer's Spanning-Tree-Protocol ids as acked, or None.
    mac_address: ours as the peer acked it (announced or assigned); peer_mac_address: the peer's.
    send_lan_fcs: our bridged frames carry the LAN FCS (configuration, not negotiation).
    """

    mac_types: tuple[int, ...] = ()
    peer_mac_types: tuple[int, ...] = ()
    tinygram: bool = False
    peer_tinygram: bool = False
    tagged: bool | None = None
    peer_tagged: bool | None = None
    management_inline: bool = False
    peer_management_inline: bool = False
    bridge_control_indicator: bool = False
    peer_spanning_tree: tuple[int, ...] | None = None
    mac_address: bytes | None = None
    peer_mac_address: bytes | None = None
    send_lan_fcs: bool = False

    @property
    def peer_takes_ethernet(self) -> bool:
        """Whether the peer receives IEEE 802.3 frames (it announced it, or announced no MAC type)."""
        return not self.peer_mac_types or MacType.IEEE_802_3 in self.peer_mac_types

    @property
    def peer_takes_tagged(self) -> bool:
        """Whether to send 802.1Q-tagged frames: unless the peer said it does not take them."""
        return self.peer_tagged is not False

    def describe(self) -> str:
        """A log line: ``BCP up: 802.3, peer MAC 02:00:00:00:00:01, management inline``."""
        parts = ["802.3" if self.peer_takes_ethernet else "peer takes no 802.3"]
        if self.peer_mac_address is not None:
            parts.append(f"peer MAC {format_mac(self.peer_mac_address)}")
        if self.mac_address is not None:
            parts.append(f"our MAC {format_mac(self.mac_address)}")
        if self.management_inline or self.peer_management_inline:
            parts.append("management inline")
        if self.peer_spanning_tree is not None:
            parts.append(f"spanning tree {','.join(str(s) for s in self.peer_spanning_tree)}")
        if self.tinygram or self.peer_tinygram:
            parts.append("tinygram")
        if self.send_lan_fcs:
            parts.append("LAN FCS")
        return ", ".join(parts)


# --- value codecs ----------------------------------------------------------------------------------


def _decode_octet(name: str) -> Callable[[bytes], int]:
    def decode(data: bytes) -> int:
        if len(data) != 1:
            raise DecodeError(f"{name}: {len(data)} octets, expected 1", field=name)
        return data[0]

    return decode


def _encode_octet(value: int) -> bytes:
    return bytes((value,))


def _decode_protocols(data: bytes) -> tuple[int, ...]:
    if not data:
        raise DecodeError("Spanning-Tree-Protocol: no protocol", field="spanning-tree-protocol")
    return tuple(data)


def _encode_protocols(value: tuple[int, ...]) -> bytes:
    return bytes(value)


_flag_decode, _flag_encode = flag("bcp flag option")


# --- MAC-Support -----------------------------------------------------------------------------------


def _mac_support_request(bcp: Bcp) -> int | None:
    return MacType.IEEE_802_3 if bcp.config.mac_support else None


def _mac_support_judge(bcp: Bcp, value: int) -> Judgement:
    return ACK if value in MAC_TYPES else REJECT


def _stop_asking(bcp: Bcp, ours: object, suggested: object) -> None:
    return None  # a Nak of an option that only informs the peer: drop it


# --- Tinygram-Compression / IEEE-802-Tagged-Frame (1 enabled, 2 disabled) --------------------------


def _switch_judge(bcp: Bcp, value: int) -> Judgement:
    return ACK if value in (ENABLED, DISABLED) else REJECT


def _switch_on_nak(bcp: Bcp, ours: int | None, suggested: int | None) -> int | None:
    if ours is None or suggested not in (ENABLED, DISABLED):
        return None  # a hint for an option we do not ask for, or an undecodable suggestion
    return suggested


def _tinygram_request(bcp: Bcp) -> int | None:
    return ENABLED if bcp.config.tinygram else None


def _tinygram_on_nak(bcp: Bcp, ours: int | None, suggested: int | None) -> int | None:
    new = _switch_on_nak(bcp, ours, suggested)
    return None if new == DISABLED else new  # disabled is the default: no need to say it


def _tagged_request(bcp: Bcp) -> int | None:
    tagged = bcp.config.tagged_frames
    return None if tagged is None else (ENABLED if tagged else DISABLED)


# --- MAC-Address -----------------------------------------------------------------------------------


def _mac_request(bcp: Bcp) -> bytes | None:
    return bcp.config.mac_address


def _mac_judge(bcp: Bcp, value: bytes) -> Judgement:
    ours = bcp._want.get(BcpOption.MAC_ADDRESS) or bcp.config.mac_address
    if is_unicast_mac(value) and value != ours:
        return ACK
    assign = bcp.config.assign_mac_address
    if assign is not None and assign != value:
        return nak(assign)  # a request for an address (zeros), a group address, or ours
    return REJECT


def _mac_on_nak(bcp: Bcp, ours: bytes | None, suggested: bytes | None) -> bytes | None:
    if ours == ZERO_MAC and suggested is not None and is_unicast_mac(suggested):
        return suggested  # we asked to be assigned one
    return None  # an announced address the peer does not like, or a hint: stop announcing


# --- Spanning-Tree-Protocol (old format) -----------------------------------------------------------


def _spanning_tree_judge(bcp: Bcp, value: tuple[int, ...]) -> Judgement:
    if any(p not in _SPANNING_TREES for p in value):
        return REJECT
    if bcp.config.accept_spanning_tree or value == (SpanningTree.NULL,):
        return ACK
    return nak((int(SpanningTree.NULL),))


# --- Management-Inline / Bridge-Control-Packet-Indicator ------------------------------------------


def _management_inline_request(bcp: Bcp) -> bool | None:
    return True if bcp.config.management_inline else None


def _bcpi_judge(bcp: Bcp, value: bool) -> Judgement:
    return ACK if bcp.config.accept_bridge_control_indicator else REJECT


def _ack(bcp: Bcp, value: object) -> Judgement:
    return ACK


BCP_OPTIONS = OptionTable(
    "BCP",
    [
        OptionSpec(BcpOption.MAC_SUPPORT, "MAC-Support", _decode_octet("mac-support"), _encode_octet,
                   request=_mac_support_request, judge=_mac_support_judge, on_nak=_stop_asking),
        OptionSpec(BcpOption.TINYGRAM_COMPRESSION, "Tinygram-Compression", _decode_octet("tinygram-compression"),
                   _encode_octet, request=_tinygram_request, judge=_switch_judge, on_nak=_tinygram_on_nak),
        OptionSpec(BcpOption.MAC_ADDRESS, "MAC-Address", fixed(6, "mac-address"), bytes, request=_mac_request,
                   judge=_mac_judge, on_nak=_mac_on_nak),
        OptionSpec(BcpOption.SPANNING_TREE_PROTOCOL, "Spanning-Tree-Protocol", _decode_protocols,
                   _encode_protocols, judge=_spanning_tree_judge),
        OptionSpec(BcpOption.IEEE_802_TAGGED_FRAME, "IEEE-802-Tagged-Frame", _decode_octet("ieee-802-tagged-frame"),
                   _encode_octet, request=_tagged_request, judge=_switch_judge, on_nak=_switch_on_nak),
        OptionSpec(BcpOption.MANAGEMENT_INLINE, "Management-Inline", _flag_decode, _flag_encode,
                   request=_management_inline_request, judge=_ack, on_nak=_stop_asking),
        OptionSpec(BcpOption.BRIDGE_CONTROL_PACKET_INDICATOR, "Bridge-Control-Packet-Indicator", _flag_decode,
                   _flag_encode, judge=_bcpi_judge, on_nak=_stop_asking),
        # Source-route bridging and the obsolete LAN-ID: named for the logs, always rejected.
        OptionSpec(BcpOption.BRIDGE_IDENTIFICATION, "Bridge-Identification", raw, raw),
        OptionSpec(BcpOption.LINE_IDENTIFICATION, "Line-Identification", raw, raw),
        OptionSpec(BcpOption.LAN_IDENTIFICATION, "LAN-Identification", raw, raw),
    ],
)


class Bcp(ControlProtocol):
    """BCP in either role (the protocol is symmetric; see the module docstring). ``values`` is a
    :class:`BcpValues` once up."""

    protocol = Protocol.BCP
    name = "BCP"
    options = BCP_OPTIONS

    def __init__(self, config: BcpConfig | None = None, *, rng: Rng = urandom, first_identifier: int = 1):
        self.config = config or BcpConfig()
        super().__init__(timers=self.config.timers, rng=rng, first_identifier=first_identifier)
        # MAC-Support may repeat; the machine keeps one value per type, so the acked set is kept here.
        self._peer_mac_types_pending: tuple[int, ...] = ()

    def _judge_request(self, packet: CpPacket, options: tuple[Option, ...]) -> bool:
        good = super()._judge_request(packet, options)
        if good:  # all of them acked, so each MAC-Support instance decoded to a known type
            self._peer_mac_types_pending = tuple(dict.fromkeys(
                opt.data[0] for opt in options if opt.type == BcpOption.MAC_SUPPORT))
        return good

    def _build_values(self) -> BcpValues:
        o, ours, theirs = BcpOption, self.ours, self.theirs

        def switch(d: dict, typ: int) -> bool | None:
            return None if typ not in d else d[typ] == ENABLED

        mac = ours.get(o.MAC_ADDRESS)
        return BcpValues(
            mac_types=(ours[o.MAC_SUPPORT],) if o.MAC_SUPPORT in ours else (),
            peer_mac_types=self._peer_mac_types_pending if o.MAC_SUPPORT in theirs else (),
            tinygram=ours.get(o.TINYGRAM_COMPRESSION) == ENABLED,
            peer_tinygram=theirs.get(o.TINYGRAM_COMPRESSION) == ENABLED,
            tagged=switch(ours, o.IEEE_802_TAGGED_FRAME),
            peer_tagged=switch(theirs, o.IEEE_802_TAGGED_FRAME),
            management_inline=o.MANAGEMENT_INLINE in ours,
            peer_management_inline=o.MANAGEMENT_INLINE in theirs,
            bridge_control_indicator=o.BRIDGE_CONTROL_PACKET_INDICATOR in theirs,
            peer_spanning_tree=theirs.get(o.SPANNING_TREE_PROTOCOL),
            mac_address=mac if mac is not None and mac != ZERO_MAC else None,
            peer_mac_address=theirs.get(o.MAC_ADDRESS),
            send_lan_fcs=self.config.send_lan_fcs,
        )
