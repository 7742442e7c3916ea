"""Test helpers: two control-protocol machines over an in-memory link, with a fake clock.

Like aioquic's ``client_and_server``/``roundtrip``: nothing here sleeps or reads a clock; the tests
choose ``now``. The link can drop, duplicate and reorder packets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastl2tp.ppp.fsm import ControlProtocol, PppEvent
from fastl2tp.wire.ppp import CpPacket, decode_cp

Filter = Callable[[str, CpPacket], bool]


def events(machine: ControlProtocol) -> list[PppEvent]:
    out = []
    while (ev := machine.next_event()) is not None:
        out.append(ev)
    return out


def counting_rng(start: int = 1) -> Callable[[int], bytes]:
    """A deterministic rng: successive calls return 0x..01, 0x..02, ... (never zero)."""
    state = {"n": start}

    def rng(n: int) -> bytes:
        value = state["n"]
        state["n"] += 1
        return value.to_bytes(n, "big")

    return rng


def fixed_rng(*chunks: bytes) -> Callable[[int], bytes]:
    """An rng that hands out ``chunks`` in order, then counts from 0x10 upwards."""
    queue = list(chunks)
    fallback = counting_rng(0x10)

    def rng(n: int) -> bytes:
        if queue:
            chunk = queue.pop(0)
            assert len(chunk) == n, (chunk, n)
            return chunk
        return fallback(n)

    return rng


@dataclass
class Pair:
    """``a`` and ``b`` joined by a link. ``log`` records (sender name, packet) for every packet sent."""

    a: ControlProtocol
    b: ControlProtocol
    log: list[tuple[str, CpPacket]] = field(default_factory=list)
    delivered: int = 0

    def names(self) -> dict[int, str]:
        return {id(self.a): "a", id(self.b): "b"}

    def peer(self, m: ControlProtocol) -> ControlProtocol:
        return self.b if m is self.a else self.a

    def pump(self, now: float, *, drop: Filter | None = None, reorder: bool = False,
             duplicate: Filter | None = None, max_rounds: int = 200) -> None:
        """Deliver queued packets both ways until both sides are quiet (at this ``now``)."""
        for _ in range(max_rounds):
            batch: list[tuple[str, ControlProtocol, bytes]] = []
            for name, m in (("a", self.a), ("b", self.b)):
                for _proto, payload in m.take_output():
                    pkt = decode_cp(payload)
                    self.log.append((name, pkt))
                    if drop is not None and drop(name, pkt):
                        continue
                    batch.append((name, self.peer(m), payload))
                    if duplicate is not None and duplicate(name, pkt):
                        batch.append((name, self.peer(m), payload))
            if not batch:
                return
            if reorder:
                batch.reverse()
            for _name, dst, payload in batch:
                dst.receive(payload, now)
                self.delivered += 1
        raise AssertionError("link did not settle")

    def run(self, now: float, until: float, **kw) -> float:
        """Pump, then fire timers in deadline order until ``until``; returns the last ``now``."""
        self.pump(now, **kw)
        while True:
            timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            if not timers or min(timers) > until:
                return now
            now = min(timers)
            self.a.handle_timer(now)
            self.b.handle_timer(now)
            self.pump(now, **kw)

    def start(self, now: float, **kw) -> None:
        for m in (self.a, self.b):
            m.open(now)
            m.lower_up(now)
        self.pump(now, **kw)
