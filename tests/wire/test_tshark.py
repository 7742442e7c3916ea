"""Our own control messages, captured to a pcap, decode in tshark with no malformed-packet warnings."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

from fastl2tp.control.endpoint import EndpointConfig, TunnelSecret
from fastl2tp.control.tunnel import TunnelConfig
from fastl2tp.wire.avp import AvpType, ControlMessage, MessageType, avp, encode_message, with_random_vector
from tests.control.factory import message
from tests.control.harness import LNS_ADDR, make_pair
from tests.pcaputil import write_udp_pcap


def tshark():
    path = shutil.which("tshark")
    assert path, "tshark is not installed (make test installs it: apt-get install tshark)"
    return path


def our_conversation():
    secret = b"tunnel-secret"
    p = make_pair(lac_cfg=EndpointConfig(tunnel=TunnelConfig(secret=secret), accept_tunnels=False),
                  lns_cfg=EndpointConfig(secrets=(TunnelSecret(ipaddress.ip_network("0.0.0.0/0"), secret),)))
    tid = p.lac.open_tunnel(LNS_ADDR, 0.0)
    sid = p.lac.open_session(tid, 0.0)
    p.run(until=70.0)  # set-up, then a HELLO exchange
    p.lac.close_session(tid, sid, p.now)
    p.run(until=p.now + 1)
    p.lac.close_tunnel(tid, p.now)
    p.run()
    return [(("192.0.2.20", 40000), ("192.0.2.10", 1701), d) if who == "lac" else
            (("192.0.2.10", 1701), ("192.0.2.20", 40000), d) for _, who, d in p.wire_log]


def every_message_type():
    out = []
    for i, mt in enumerate(MessageType):
        out.append(encode_message(message(mt, 5, 6, i, i)))
    hidden = with_random_vector([avp(AvpType.MESSAGE_TYPE, MessageType.ICRQ),
                                 avp(AvpType.ASSIGNED_SESSION_ID, 9, hidden=True),
                                 avp(AvpType.CALL_SERIAL_NUMBER, 1)], lambda n: b"\x11" * n)
    out.append(encode_message(ControlMessage(5, 0, 20, 3, tuple(hidden)), b"secret"))
    return [(("192.0.2.20", 1701), ("192.0.2.10", 1701), d) for d in out]


def test_tshark_decodes_our_messages_without_warnings(tmp_path):
    pcap = tmp_path / "ours.pcap"
    packets = our_conversation() + every_message_type()
    write_udp_pcap(pcap, packets)
    result = subprocess.run([tshark(), "-r", str(pcap), "-V"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Malformed" not in text
    assert "Expert Info (Error" not in text and "Expert Info (Warning" not in text
    summary = subprocess.run([tshark(), "-r", str(pcap)], capture_output=True, text=True, timeout=120).stdout
    assert summary.count("L2TP") >= len(packets)
    for name in ("SCCRQ", "SCCRP", "SCCCN", "StopCCN", "Hello", "OCRQ", "OCRP", "OCCN", "ICRQ", "ICRP", "ICCN",
                 "CDN", "WEN", "SLI", "ZLB"):
        assert f"Control Message - {name} " in summary, name
    assert "AVP Type: Challenge Response (13)" in text and "Hidden: True" in text
