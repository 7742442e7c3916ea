"""The metrics (fastl2tp.runtime.metrics): what the collector reads, that the text parses as Prometheus
text, and that the HTTP responder survives bad clients without a traceback and without holding up
the loop it shares with the daemon. No root needed: a Node runs here with a stand-in for netlink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from types import SimpleNamespace

import pytest
import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from fastl2tp._dp import DataPlane, DropReason
from fastl2tp.config import load_text
from fastl2tp.control.endpoint import Endpoint, EndpointConfig
from fastl2tp.control.transport import Transport, TransportConfig, TransportCounters
from fastl2tp.control.tunnel import TunnelConfig, TunnelState
from fastl2tp.errors import FastL2tpError
from fastl2tp.ppp.events import Role
from fastl2tp.runtime.metrics import (
    SETUP_BUCKETS_S,
    MetricsServer,
    NodeCollector,
    NodeCounters,
    node_registry,
    registry_render,
    start_metrics,
)
from fastl2tp.runtime.node import Node
from fastl2tp.wire.auth import AuthMethod

LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def parse(text: str) -> dict[str, list]:
    """Metric family name -> its samples, from Prometheus text."""
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the collector -----------------------------------------------------------------------------------


@pytest.fixture
def fake_node():
    """What the collector reads of a Node: a real data plane with one session, a real endpoint with one
    tunnel being dialed, and the node's counters."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    dp = DataPlane()
    index = dp.add_socket(sock.fileno())
    dp.add_session(7, 9, 70, 90, "127.0.0.1", 1701, index, -1)
    endpoint = Endpoint(EndpointConfig(tunnel=TunnelConfig()))
    endpoint.open_tunnel(("192.0.2.1", 1701), 0.0)
    session = SimpleNamespace(tunnel_id=7, session_id=9, key=(7, 9), ifname="l2tp-in1", user="ex",
                              status="connected", closed=False)
    closing = SimpleNamespace(tunnel_id=7, session_id=10, key=(7, 10), ifname="", user="", status="connecting",
                              closed=True)
    node = SimpleNamespace(driver=SimpleNamespace(endpoint=endpoint), sessions={(7, 9): session, (7, 10): closing},
                           dp=dp, counters=NodeCounters())
    yield node
    sock.close()


def scrape(node) -> dict[str, list]:
    from prometheus_client import generate_latest

    return parse(generate_latest(node_registry(node)).decode())


def test_collector_reads_tunnels_sessions_traffic_drops(fake_node):
    m = scrape(fake_node)
    tunnels = m["fastl2tp_tunnels"]
    assert {s.labels["state"] for s in tunnels} == {st.value for st in TunnelState}  # zeros included
    assert value(tunnels, "fastl2tp_tunnels", state="wait-ctl-reply") == 1
    assert value(tunnels, "fastl2tp_tunnels", state="established") == 0
    sessions = m["fastl2tp_sessions"]
    assert value(sessions, "fastl2tp_sessions", status="connected") == 1
    assert value(sessions, "fastl2tp_sessions", status="disconnecting") == 1  # closed, not yet torn down
    assert value(sessions, "fastl2tp_sessions", status="connecting") == 0
    labels = {"interface": "l2tp-in1", "user": "ex", "tunnel_id": "7", "session_id": "9"}
    for way in ("receive", "transmit"):
        for unit in ("bytes", "packets"):
            name = f"fastl2tp_session_{way}_{unit}"
            assert value(m[name], name + "_total", **labels) == 0
            assert len(m[name]) == 1  # the session the data plane does not know is skipped
            assert value(m[f"fastl2tp_{way}_{unit}"], f"fastl2tp_{way}_{unit}_total") == 0
    drops = m["fastl2tp_dataplane_drops"]
    assert {s.labels["reason"] for s in drops} == {r.name.lower() for r in DropReason if r is not DropReason.OK}
    assert value(m["fastl2tp_control_retransmits"], "fastl2tp_control_retransmits_total") == 0


def test_garbage_datagram_counts_as_a_control_drop(fake_node):
    fake_node.driver.endpoint.receive_datagram(b"\x00", ("192.0.2.9", 1701), 0.0)
    drops = scrape(fake_node)["fastl2tp_control_drops"]
    assert sum(s.value for s in drops) == 1 and drops[0].labels["reason"].startswith("malformed")


def test_counters_feed_auth_setup_histogram_totals_and_retransmits(fake_node):
    c: NodeCounters = fake_node.counters
    c.auth_result(AuthMethod.MSCHAP2, Role.SERVER, True)
    c.auth_result(AuthMethod.MSCHAP2, Role.SERVER, True)
    c.auth_result(AuthMethod.PAP, Role.CLIENT, False)
    c.session_set_up(0.3)
    c.session_set_up(1000.0)  # past the last bucket: only +Inf
    c.session_ended({"rx_bytes": 100, "rx_packets": 2, "tx_bytes": 50, "tx_packets": 1, "tx_ns": 5})
    c.transport.retransmits += 3
    m = scrape(fake_node)
    auth = m["fastl2tp_authentications"]
    assert len(auth) == len(AuthMethod) * len(Role) * 2  # every combination, zeros included
    assert value(auth, "fastl2tp_authentications_total", method="mschap2", role="server", result="success") == 2
    assert value(auth, "fastl2tp_authentications_total", method="pap", role="client", result="failure") == 1
    assert value(auth, "fastl2tp_authentications_total", method="chap", role="server", result="success") == 0
    setup = m["fastl2tp_session_setup_seconds"]
    assert value(setup, "fastl2tp_session_setup_seconds_count") == 2
    assert value(setup, "fastl2tp_session_setup_seconds_sum") == pytest.approx(1000.3)
    assert value(setup, "fastl2tp_session_setup_seconds_bucket", le="0.25") == 0
    assert value(setup, "fastl2tp_session_setup_seconds_bucket", le="0.5") == 1
    assert value(setup, "fastl2tp_session_setup_seconds_bucket", le=repr(float(SETUP_BUCKETS_S[-1]))) == 1
    assert value(setup, "fastl2tp_session_setup_seconds_bucket", le="+Inf") == 2
    assert value(m["fastl2tp_receive_bytes"], "fastl2tp_receive_bytes_total") == 100  # ended sessions stay
    assert value(m["fastl2tp_transmit_packets"], "fastl2tp_transmit_packets_total") == 1
    assert value(m["fastl2tp_control_retransmits"], "fastl2tp_control_retransmits_total") == 3


class _FakeDataPlane:
    """Per-session traffic set by the test (the real data plane only counts real packets)."""

    def __init__(self):
        self.traffic: dict[tuple[int, int], int] = {}
        self.reads = 0

    def session_traffic(self, tunnel_id: int, session_id: int) -> tuple[int, ...]:
        n = self.traffic[(tunnel_id, session_id)]  # KeyError like the real one
        self.reads += 1
        return (1, n, 1, 2 * n, 0, 0)  # rx packets, rx bytes, tx packets, tx bytes, last rx/tx ns

    def counters(self) -> dict[str, int]:
        return {r.name.lower(): 0 for r in DropReason}


def _traffic_node(n_sessions: int):
    dp = _FakeDataPlane()
    sessions = {}
    for i in range(1, n_sessions + 1):
        dp.traffic[(1, i)] = 100 * i
        sessions[(1, i)] = SimpleNamespace(tunnel_id=1, session_id=i, key=(1, i), ifname=f"if{i}", user=f"u{i}",
                                           status="connected", closed=False)
    return SimpleNamespace(driver=None, sessions=sessions, dp=dp, counters=NodeCounters())


def _end(node, key, final: int) -> None:
    """What Node._teardown does: forget the session, keep its last traffic in the totals."""
    node.sessions.pop(key)
    node.dp.traffic.pop(key)
    node.counters.session_ended({"rx_bytes": final, "rx_packets": 1, "tx_bytes": 2 * final, "tx_packets": 1})


def _families_of(collector: NodeCollector, between=None) -> dict[str, list]:
    from fastl2tp.runtime.metrics import _Families

    f = _Families()
    steps = collector._fill(f)
    next(steps)  # the first pause: one chunk read
    if between is not None:
        between()
    for _ in steps:
        pass
    return {family.name: family.samples for family in f.all()}


@pytest.mark.parametrize("ended", [1, 2], ids=["after-it-was-read", "before-it-was-read"])
def test_a_session_ending_during_a_scrape_is_counted_once(ended):
    node = _traffic_node(2)
    collector = NodeCollector(node, chunk=1)  # a pause after every session
    m = _families_of(collector, between=lambda: _end(node, (1, ended), final=1000))
    users = [s.labels["user"] for s in m["fastl2tp_session_receive_bytes"]]
    assert users == (["u1", "u2"] if ended == 1 else ["u1"])  # series read before it ended stay
    other = 100 * (3 - ended)
    assert value(m["fastl2tp_receive_bytes"], "fastl2tp_receive_bytes_total") == 1000 + other
    assert value(m["fastl2tp_transmit_bytes"], "fastl2tp_transmit_bytes_total") == 2000 + 2 * other
    assert value(m["fastl2tp_sessions"], "fastl2tp_sessions", status="connected") == 1


def test_render_gives_the_loop_back_between_chunks():
    node = _traffic_node(10)
    ticks = 0

    async def main() -> bytes:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = ticks
        body = await NodeCollector(node, chunk=2).render()
        task.cancel()
        ticks -= start
        return body

    body = uvloop.run(main())
    assert ticks >= 5 and node.dp.reads == 10
    m = parse(body.decode())
    assert value(m["fastl2tp_receive_bytes"], "fastl2tp_receive_bytes_total") == sum(100 * i for i in range(1, 11))


def test_setup_bucket_bounds_are_inclusive():
    c = NodeCounters()
    c.session_set_up(SETUP_BUCKETS_S[0])  # le="0.01" holds 0.01 itself
    c.session_set_up(-1.0)  # a clock oddity is clamped to 0, never a negative sum
    assert c.setup_buckets[0] == 2 and c.setup_sum_s == SETUP_BUCKETS_S[0]


def test_every_transport_of_a_config_counts_into_its_shared_counters():
    shared = TransportCounters()
    config = TransportConfig(counters=shared)
    assert config == TransportConfig() and hash(config) == hash(TransportConfig())  # not a setting
    a, b = Transport(config, 0.0), Transport(config, 0.0)
    a.send(0, (), 0.0)
    b.send(0, (), 0.0)
    a.handle_timer(1.0)
    b.handle_timer(1.0)
    a.handle_timer(3.0)
    assert (a.stats["retransmits"], b.stats["retransmits"], shared.retransmits) == (2, 1, 3)
    del a, b  # the total outlives the transports
    assert shared.retransmits == 3


# --- HTTP ----------------------------------------------------------------------------------------------


class _Static(Collector):
    """A collector with one gauge; ``fail`` makes it raise, as a bug would."""

    def __init__(self):
        self.fail = False

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        if self.fail:
            raise RuntimeError("collector bug")
        yield GaugeMetricFamily("fastl2tp_test", "a test gauge", value=1)


async def _exchange(address, data: bytes, *, close_write: bool = True, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:  # refused at once (too many connections)
        return b""
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("loop", LOOPS)
def test_http_answers_good_and_bad_requests_and_keeps_the_loop_running(loop, caplog):
    caplog.set_level(logging.DEBUG, logger="fastl2tp.runtime.metrics")
    collector = _Static()
    registry = CollectorRegistry()
    registry.register(collector)

    async def main() -> None:
        server = MetricsServer(registry_render(registry), read_timeout_s=0.3, max_request_bytes=1024, max_clients=4)
        await server.start("127.0.0.1", 0)
        address = server.address
        ticks = 0

        async def ticker() -> None:  # the daemon's loop: must keep running whatever the clients do
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        try:
            ok = await _exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
            head, _, body = ok.partition(b"\r\n\r\n")
            assert _status(ok) == 200
            assert f"Content-Type: {CONTENT_TYPE_LATEST}".encode() in head
            assert b"Connection: close" in head and f"Content-Length: {len(body)}".encode() in head
            assert value(parse(body.decode())["fastl2tp_test"], "fastl2tp_test") == 1
            # query strings are ignored; bare LF line ends and HTTP/1.0 are accepted
            assert _status(await _exchange(address, b"GET /metrics?x=1 HTTP/1.0\n\n")) == 200
            heads = await _exchange(address, b"HEAD /metrics HTTP/1.1\r\n\r\n")
            assert _status(heads) == 200 and heads.endswith(b"\r\n\r\n")

            cases = [
                (b"GET / HTTP/1.1\r\n\r\n", 404),
                (b"GET /metricsx HTTP/1.1\r\n\r\n", 404),
                (b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405),
                (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
                (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
                (b"GET /metrics\r\n\r\n", 400),
                (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
                (b"get /metrics HTTP/1.1\r\n\r\n", 400),
                (b"GET metrics HTTP/1.1\r\n\r\n", 400),
                (b"GET /metrics SMTP/1.1\r\n\r\n", 400),
                (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello
                (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
                (b"GET /metrics HTTP/1.1\r\n : x\r\n\r\n", 400),
                (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 400),  # one line over the limit
                (b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 400),  # too many headers
            ]
            for request, status in cases:
                response = await _exchange(address, request)
                assert _status(response) == status, (request[:40], response[:80])
            # the answer arrives even though the request was not read to its end (no reset)
            flood = await _exchange(address, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", close_write=False)
            assert _status(flood) == 400
            body_left = await _exchange(address, b"POST /metrics HTTP/1.1\r\nContent-Length: 9000\r\n\r\n"
                                        + b"x" * 9000, close_write=False)
            assert _status(body_left) == 405
            allow = await _exchange(address, b"PUT /metrics HTTP/1.1\r\n\r\n")
            assert b"Allow: GET, HEAD\r\n" in allow

            # a client that closes mid-request, or sends nothing, or stalls: closed, no answer
            assert await _exchange(address, b"GET /metr") == b""
            assert await _exchange(address, b"") == b""
            assert await _exchange(address, b"GET /metrics HTTP/1.1\r\n", close_write=False) == b""  # read timeout

            # more connections than allowed at once: the extra ones are closed, the others are served
            idle = [await asyncio.open_connection(*address) for _ in range(4)]
            await asyncio.sleep(0.05)
            assert await _exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n") == b""
            for _, w in idle:
                w.close()
            await asyncio.sleep(0.05)
            assert server.stats["refused"] == 1

            # a collector bug: 500 and a logged traceback, and the next scrape works again
            collector.fail = True
            assert _status(await _exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n")) == 500
            collector.fail = False
            assert _status(await _exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n")) == 200
            assert ticks > 10  # the loop kept running throughout (the read timeout alone is 0.3 s)
            assert not server._clients
        finally:
            tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick_task
            await server.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)  # closed for good

    LOOPS[loop](main())
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in bad] == ["metrics: collecting failed"]  # only our own bug is logged loudly
    assert all(r.exc_info is None for r in caplog.records if r.levelno < logging.WARNING)


class _Huge(Collector):
    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily("fastl2tp_test", "x" * 16_000_000, value=1)  # more than socket buffers hold


def test_a_client_that_does_not_read_the_answer_is_dropped():
    registry = CollectorRegistry()
    registry.register(_Huge())

    async def main() -> None:
        server = MetricsServer(registry_render(registry), write_timeout_s=0.3)
        await server.start("127.0.0.1", 0)
        _, writer = await asyncio.open_connection(*server.address)
        writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
        await writer.drain()
        for _ in range(100):  # the server gives up on the write and drops the connection
            await asyncio.sleep(0.05)
            if not server._clients and server.stats["200"]:
                break
        assert not server._clients and server.stats["200"] == 1
        writer.close()
        await server.close()

    uvloop.run(main())


def test_close_drops_connections_that_are_still_open():
    async def main() -> None:
        server = MetricsServer(registry_render(CollectorRegistry()), read_timeout_s=30)
        await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(b"GET /metrics HTTP/1.1\r\n")  # and never the end of the request
        await writer.drain()
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.close(), 2.0)
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()

    uvloop.run(main())


# --- a Node with [metrics] -----------------------------------------------------------------------------


class _NoNetlink:
    """The one netlink call a Node makes at start without sessions."""

    async def cleanup_leftovers(self) -> list[str]:
        return []


def test_node_serves_its_metrics_and_stops_serving_at_stop(caplog):
    caplog.set_level(logging.INFO, logger="fastl2tp.runtime.node")
    port = free_tcp_port()
    config = load_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')

    async def main() -> None:
        node = Node(config, _NoNetlink())  # type: ignore[arg-type]
        await node.start()
        try:
            response = await _exchange(("127.0.0.1", port), b"GET /metrics HTTP/1.1\r\n\r\n")
            body = response.partition(b"\r\n\r\n")[2].decode()
            m = parse(body)
            assert value(m["fastl2tp_tunnels"], "fastl2tp_tunnels", state="established") == 0
            assert value(m["fastl2tp_sessions"], "fastl2tp_sessions", status="connected") == 0
            assert node.config.l2tp_server.server.enabled is False
        finally:
            await node.stop()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    uvloop.run(main())
    assert f"metrics on http://127.0.0.1:{port}/metrics" in caplog.messages


def test_node_without_metrics_listens_on_no_tcp_port():
    async def main() -> None:
        node = Node(load_text(""), _NoNetlink())  # type: ignore[arg-type]
        await node.start()
        try:
            assert node.metrics_server is None
        finally:
            await node.stop()

    uvloop.run(main())


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> None:
            node = Node(load_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n'), _NoNetlink())  # type: ignore[arg-type]
            try:
                with pytest.raises(FastL2tpError) as info:
                    await node.start()
            finally:
                await node.stop()
            assert str(info.value) == f"metrics: cannot listen on 127.0.0.1:{port}: Address already in use"

        uvloop.run(main())


def test_start_metrics_refuses_a_bad_address_in_one_line():
    async def main() -> None:
        with pytest.raises(FastL2tpError, match=r'^metrics: "localhost:1": "localhost" is not an IPv4 address'):
            await start_metrics(SimpleNamespace(), "localhost:1")  # type: ignore[arg-type]

    asyncio.run(main())
