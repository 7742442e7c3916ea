"""A LAC↔LNS pair over an in-memory link that can drop, duplicate and reorder (after aioquic's
client_and_server). Time is a number the test advances; nothing sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fastl2tp.control.endpoint import Endpoint, EndpointConfig

LAC_ADDR = ("192.0.2.20", 40000)
LNS_ADDR = ("192.0.2.10", 1701)


@dataclass
class Impairment:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # chance a datagram is held back behind the next one
    seed: int = 1


@dataclass
class Pair:
    lac: Endpoint
    lns: Endpoint
    impair: Impairment = field(default_factory=Impairment)
    now: float = 0.0
    events: dict = field(default_factory=lambda: {"lac": [], "lns": []})
    delivered: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.impair.seed)
        self.in_flight: list[tuple[str, bytes, tuple[str, int]]] = []
        self.wire_log: list[tuple[float, str, bytes]] = []  # (time, sender, datagram)

    def _wire(self) -> None:
        for side, ep, src in (("lns", self.lac, LAC_ADDR), ("lac", self.lns, LNS_ADDR)):
            for d in ep.datagrams_to_send():
                self.wire_log.append((self.now, "lac" if side == "lns" else "lns", d.data))
                if self.rng.random() < self.impair.loss:
                    continue
                copies = 2 if self.rng.random() < self.impair.duplicate else 1
                for _ in range(copies):
                    if self.in_flight and self.rng.random() < self.impair.reorder:
                        self.in_flight.insert(len(self.in_flight) - 1, (side, d.data, src))
                    else:
                        self.in_flight.append((side, d.data, src))

    def step(self) -> bool:
        """Deliver everything in flight; if nothing is, advance time to the next timer. Returns False
        when there is nothing left to do."""
        self._wire()
        if self.in_flight:
            batch, self.in_flight = self.in_flight, []
            for side, data, src in batch:
                ep = self.lac if side == "lac" else self.lns
                ep.receive_datagram(data, src, self.now)
                self.delivered += 1
            self._drain_events()
            return True
        timers = [t for t in (self.lac.get_timer(), self.lns.get_timer()) if t is not None]
        if not timers:
            return False
        self.now = max(self.now, min(timers))
        self.lac.handle_timer(self.now)
        self.lns.handle_timer(self.now)
        self._drain_events()
        return True

    def _drain_events(self) -> None:
        self.events["lac"].extend(self.lac.take_events())
        self.events["lns"].extend(self.lns.take_events())

    def run(self, until: float | None = None, max_steps: int = 1_000_000) -> None:
        for _ in range(max_steps):
            if until is not None:
                nxt = [t for t in (self.lac.get_timer(), self.lns.get_timer()) if t is not None]
                self._wire()
                if not self.in_flight and (not nxt or min(nxt) > until):
                    self.now = max(self.now, until)
                    return
            if not self.step():
                return
        raise AssertionError("pair did not settle")

    def settle(self) -> None:
        """Deliver what is in flight without advancing time."""
        for _ in range(10_000):
            self._wire()
            if not self.in_flight:
                return
            self.step()

    def types(self, side: str) -> list[str]:
        return [type(e).__name__ for e in self.events[side]]


def make_pair(impair: Impairment | None = None, lac_cfg: EndpointConfig | None = None,
              lns_cfg: EndpointConfig | None = None, seed: int = 7) -> Pair:
    r = random.Random(seed)
    lac = Endpoint(lac_cfg or EndpointConfig(accept_tunnels=False), rng=r.randbytes)
    lns = Endpoint(lns_cfg or EndpointConfig(), rng=r.randbytes)
    return Pair(lac, lns, impair or Impairment())
