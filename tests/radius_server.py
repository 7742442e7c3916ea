"""A real FreeRADIUS (Debian ``freeradius``) for the tests, and ``radclient`` to talk to RADIUS servers.

``FreeRadius`` writes a complete private configuration directory (nothing under /etc/freeradius is
read or touched), starts ``freeradius -X -f -d DIR`` on the host or inside a ``tests.netns.NetNS``,
waits for "Ready to process requests", keeps the debug output in ``DIR/freeradius.log`` and stops the
process by its PID (SIGTERM, then SIGKILL). The fixture around it is in ``tests/radius_fixtures.py``.

What the generated server does (one virtual server, ``fastl2tp-test``):

* listens for authentication and accounting on ``address`` (IPv4 or IPv6) at ``auth_port`` and
  ``acct_port``; two servers (primary and backup) differ in address or ports;
* knows the NASes given as ``RadiusClient(address-or-CIDR, secret)``;
* authenticates the ``RadiusUser`` list from a generated ``users`` file: the cleartext password serves
  PAP, CHAP, MS-CHAPv1 and MS-CHAPv2; ``reject=True`` rejects the user whatever the password;
  ``reply`` items go into the Access-Accept (Framed-IP-Address, Framed-Route, Session-Timeout, Class,
  Mikrotik-Rate-Limit, ...; the MikroTik (14988) and Microsoft dictionaries are the Debian ones);
* MS-CHAPv2 answers carry MS-CHAP2-Success and MS-MPPE-Send-Key/Recv-Key (``mschap { use_mppe = yes }``),
  MS-CHAPv1 answers MS-CHAP-MPPE-Keys; failures carry MS-CHAP-Error (E=691);
* every Access-Accept and Access-Reject carries a Message-Authenticator (FreeRADIUS 3.2.1, Debian 12,
  predates the Blast-RADIUS change that does this by itself; a client that insists on one, as RFC 3579
  and fastl2tp do, needs it); rejects keep only Reply-Message/MS-CHAP-Error (``attr_filter``);
* writes every accounting request to ``DIR/detail`` (``detail_records()`` parses it) and answers it;
* answers Status-Server on the auth port;
* no proxying, no EAP, no TLS; reject_delay 0 so a test does not wait for rejects.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from tests.netns import NetNS

DEB_PACKAGES = "freeradius freeradius-utils"
READY_LINE = "Ready to process requests"
DICTIONARY_DIR = "/usr/share/freeradius"
LIBDIR = "/usr/lib/freeradius"

# An attribute value: str (written quoted), int (bare), bytes (0x hex). Reply/check items are a
# Mapping name -> value or list of values (several instances), or a sequence of (name, value) pairs.
Value = str | int | bytes
Items = Mapping[str, Value | Sequence[Value]] | Sequence[tuple[str, Value]]


class FreeRadiusMissing(RuntimeError):
    """``freeradius`` or ``radclient`` is not installed."""


def find_program(name: str) -> str | None:
    """The program on PATH or in /usr/sbin, /usr/bin (root's PATH may lack sbin under some runners)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def missing_programs() -> str | None:
    """A message naming the Debian packages when ``freeradius`` or ``radclient`` is missing, else None."""
    missing = [n for n in ("freeradius", "radclient") if find_program(n) is None]
    if not missing and os.path.exists(os.path.join(DICTIONARY_DIR, "dictionary.mikrotik")):
        return None
    what = ", ".join(missing) or f"{DICTIONARY_DIR}/dictionary.mikrotik"
    return (f"{what} not found: the RADIUS tests need the Debian packages {DEB_PACKAGES} "
            f"(`make deb-test` or `apt-get install -y {DEB_PACKAGES}`)")


def require_programs() -> None:
    msg = missing_programs()
    if msg:
        raise FreeRadiusMissing(msg)


# --- the configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class RadiusUser:
    """One user of the ``users`` file. ``check`` adds check items (e.g. ``{"Calling-Station-Id": "x"}``)."""

    name: str
    password: str
    reply: Items = ()
    reject: bool = False
    check: Items = ()


@dataclass(frozen=True)
class RadiusClient:
    """A NAS allowed to talk to the server: an address or CIDR and the shared secret."""

    address: str
    secret: str
    name: str = ""
    require_message_authenticator: bool = False


def _items(items: Items) -> list[tuple[str, Value]]:
    if isinstance(items, Mapping):
        out: list[tuple[str, Value]] = []
        for name, v in items.items():
            if isinstance(v, (list, tuple)):
                out.extend((name, x) for x in v)
            else:
                out.append((name, v))  # type: ignore[arg-type]
        return out
    return [(n, v) for n, v in items]


def quote(value: Value) -> str:
    """A value as FreeRADIUS config/users/radclient text: int bare, bytes 0xHEX, str double-quoted."""
    if isinstance(value, bool):
        raise TypeError("booleans are not RADIUS values")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    s = str(value)
    if any(c in s for c in "\r\n\x00"):
        raise ValueError(f"control characters in a RADIUS value: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"not an attribute name: {name!r}")
    return name


def users_file(users: Sequence[RadiusUser]) -> str:
    """The ``users`` (rlm_files) text: check items on the name line, reply items indented below."""
    lines = ["# generated by tests/radius_server.py", ""]
    for u in users:
        if not u.name or any(c.isspace() or c in '"\\#' for c in u.name):
            raise ValueError(f"user name unsuitable for the users file: {u.name!r}")
        check = [f"Cleartext-Password := {quote(u.password)}"]
        if u.reject:
            check.append("Auth-Type := Reject")
        check += [f"{_check_name(n)} == {quote(v)}" for n, v in _items(u.check)]
        reply = [f"\t{_check_name(n)} += {quote(v)}" for n, v in _items(u.reply)]
        lines.append(f"{u.name}\t" + ", ".join(check))
        lines.append(",\n".join(reply) if reply else "")
        lines.append("")
    return "\n".join(lines) + "\n"


def _listen_addr(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"ipv6addr = {ip}" if ip.version == 6 else f"ipaddr = {ip}"


def clients_conf(clients: Sequence[RadiusClient]) -> str:
    out = ["# generated by tests/radius_server.py"]
    for i, c in enumerate(clients):
        net = ipaddress.ip_network(c.address, strict=False)
        key = "ipv6addr" if net.version == 6 else "ipaddr"
        addr = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        out.append(f"""
client {c.name or f"nas{i}"} {{
	{key} = {addr}
	secret = {quote(c.secret)}
	require_message_authenticator = {"yes" if c.require_message_authenticator else "no"}
	nas_type = other
}}""")
    return "\n".join(out) + "\n"


_RADIUSD_CONF = """\
# generated by tests/radius_server.py: a private FreeRADIUS for one test
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/radacct
name = freeradius
confdir = {dir}
modconfdir = {dir}/mods-config
certdir = {dir}/certs
cadir = {dir}/certs
run_dir = {dir}/run
db_dir = {dir}
libdir = {libdir}
pidfile = {dir}/run/freeradius.pid
max_request_time = 30
cleanup_delay = {cleanup_delay}
max_requests = 16384
hostname_lookups = no

log {{
	destination = files
	colourise = no
	file = ${{logdir}}/radius.log
	stripped_names = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = {reject_delay}
	status_server = yes
}}

proxy_requests = no

$INCLUDE clients.conf

thread pool {{
	start_servers = 2
	max_servers = 8
	min_spare_servers = 1
	max_spare_servers = 4
	max_requests_per_server = 0
	auto_limit_acct = no
}}

modules {{
	pap {{
	}}
	chap {{
	}}
	mschap {{
		use_mppe = yes
		require_encryption = no
		require_strong = no
		with_ntdomain_hack = yes
	}}
	files {{
		moddir = ${{modconfdir}}/files
		filename = ${{moddir}}/users
	}}
	preprocess {{
		moddir = ${{modconfdir}}/preprocess
		huntgroups = ${{moddir}}/huntgroups
		hints = ${{moddir}}/hints
		with_ascend_hack = no
		ascend_channels_per_line = 23
		with_ntdomain_hack = no
		with_specialix_jetstream_hack = no
		with_cisco_vsa_hack = no
		with_alvarion_vsa_hack = no
	}}
	detail {{
		filename = {dir}/detail
		escape_filenames = no
		permissions = 0644
		header = "%t"
		locking = no
		log_packet_header = no
	}}
	attr_filter attr_filter.access_reject {{
		key = "%{{User-Name}}"
		filename = ${{modconfdir}}/attr_filter/access_reject
	}}
	always ok {{
		rcode = ok
	}}
}}

instantiate {{
}}

server fastl2tp-test {{
	listen {{
		type = auth
		{listen}
		port = {auth_port}
	}}
	listen {{
		type = acct
		{listen}
		port = {acct_port}
	}}

	authorize {{
		Autz-Type Status-Server {{
			ok
		}}
		preprocess
		chap
		mschap
		files
		pap
	}}

	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
		Auth-Type MS-CHAP {{
			mschap
		}}
	}}

	preacct {{
		preprocess
	}}

	accounting {{
		detail
		ok
	}}

	post-auth {{
		update reply {{
			Message-Authenticator := 0x00
		}}
		Post-Auth-Type REJECT {{
			attr_filter.access_reject
			update reply {{
				Message-Authenticator := 0x00
			}}
		}}
	}}
}}
"""

_ACCESS_REJECT_FILTER = """\
# generated by tests/radius_server.py: what an Access-Reject may carry
DEFAULT
	Reply-Message =* ANY,
	MS-CHAP-Error =* ANY,
	Error-Cause =* ANY,
	Message-Authenticator =* ANY,
	Proxy-State =* ANY
"""


# --- the detail file ---------------------------------------------------------------------------


class DetailRecord(dict):
    """One accounting request from the detail file: attribute name -> its (last) value as text, quotes
    removed; ``getall(name)`` gives every instance; ``header`` is the time line written before it."""

    def __init__(self, header: str, pairs: Sequence[tuple[str, str]]):
        super().__init__(pairs)
        self.header = header
        self.pairs = list(pairs)

    def getall(self, name: str) -> list[str]:
        return [v for n, v in self.pairs if n == name]


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] == '"':
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


def parse_detail(text: str) -> list[DetailRecord]:
    """The records of a FreeRADIUS detail file (blank-line separated: a header line, then TAB name = value)."""
    records = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        header, pairs = "", []
        for ln in lines:
            if not ln[0].isspace():
                header = ln.strip()
                continue
            name, sep, value = ln.strip().partition(" = ")
            if sep:
                pairs.append((name, _unquote(value)))
        if pairs:
            records.append(DetailRecord(header, pairs))
    return records


# --- the server --------------------------------------------------------------------------------


@dataclass
class FreeRadius:
    """One private FreeRADIUS. ``start()`` writes the configuration and runs it; ``stop()`` ends it."""

    workdir: Path
    users: Sequence[RadiusUser]
    clients: Sequence[RadiusClient | tuple[str, str]]  # (address, secret) pairs become RadiusClient
    address: str = "127.0.0.1"
    auth_port: int = 1812
    acct_port: int = 1813
    ns: NetNS | None = None
    reject_delay: int = 0
    cleanup_delay: int = 2
    proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.nas: list[RadiusClient] = [c if isinstance(c, RadiusClient) else RadiusClient(*c) for c in self.clients]
        self.clients = self.nas
        self._logf: Any = None

    # paths
    @property
    def log_path(self) -> Path:
        return self.workdir / "freeradius.log"

    @property
    def detail_path(self) -> Path:
        return self.workdir / "detail"

    @property
    def auth_addr(self) -> str:
        """``address:port`` for radclient (IPv6 bracketed)."""
        return _hostport(self.address, self.auth_port)

    @property
    def acct_addr(self) -> str:
        return _hostport(self.address, self.acct_port)

    def write_config(self) -> Path:
        d = self.workdir
        for sub in ("log", "run", "radacct", "certs", "mods-config/files", "mods-config/preprocess",
                    "mods-config/attr_filter"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "radiusd.conf").write_text(_RADIUSD_CONF.format(
            dir=d, libdir=LIBDIR, listen=_listen_addr(self.address), auth_port=self.auth_port,
            acct_port=self.acct_port, reject_delay=self.reject_delay, cleanup_delay=self.cleanup_delay))
        (d / "clients.conf").write_text(clients_conf(self.nas))
        # the Debian dictionaries (dictionary.microsoft, dictionary.mikrotik, ...) are read from
        # /usr/share/freeradius/dictionary; this local one is read after them and adds nothing.
        (d / "dictionary").write_text("# local additions to /usr/share/freeradius/dictionary (none)\n")
        (d / "mods-config/files/users").write_text(users_file(self.users))
        (d / "mods-config/preprocess/hints").write_text("")
        (d / "mods-config/preprocess/huntgroups").write_text("")
        (d / "mods-config/attr_filter/access_reject").write_text(_ACCESS_REJECT_FILTER)
        return d

    def set_users(self, users: Sequence[RadiusUser]) -> None:
        """Replace the users; takes effect at the next ``start()`` (use ``restart()``)."""
        self.users = list(users)

    def start(self, timeout: float = 20.0) -> Self:
        require_programs()
        if self.running:
            raise RuntimeError("FreeRADIUS already running")
        self.write_config()
        cmd = [find_program("freeradius") or "freeradius", "-X", "-f", "-d", str(self.workdir)]
        self._logf = open(self.log_path, "a")  # noqa: SIM115 - open while the server runs
        if self.ns is not None:
            self.proc = self.ns.popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        else:
            self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if READY_LINE in text:
                return self
            if self.proc.poll() is not None:
                self._close_log()
                raise RuntimeError(f"freeradius exited with {self.proc.returncode} before it was ready "
                                   f"({self.where()}); its output:\n{_tail(self.log_text())}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"freeradius not ready after {timeout}s ({self.where()}); its output:\n"
                                   f"{_tail(self.log_text())}")
            time.sleep(0.05)

    def restart(self, timeout: float = 20.0) -> Self:
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; by PID only. Safe to call twice or after a crash."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=timeout)
        self._close_log()
        return p.returncode

    def _close_log(self) -> None:
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def where(self) -> str:
        ns = f" in {self.ns.name}" if self.ns is not None else ""
        return f"{self.address} auth {self.auth_port} acct {self.acct_port}{ns}, config {self.workdir}"

    def log_text(self) -> str:
        if self._logf is not None:
            self._logf.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # accounting
    def detail_records(self) -> list[DetailRecord]:
        try:
            return parse_detail(self.detail_path.read_text(errors="replace"))
        except FileNotFoundError:
            return []

    def wait_detail(self, pred=lambda r: True, timeout: float = 10.0, count: int = 1) -> list[DetailRecord]:
        """Wait until ``count`` detail records satisfy ``pred``; returns them (all matching ones)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.detail_records() if pred(r)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} wanted accounting records in {self.detail_path} "
                                     f"after {timeout}s; all records: {self.detail_records()}\n"
                                     f"freeradius output:\n{_tail(self.log_text())}")
            time.sleep(0.1)

    def radclient(self, code: str, attrs: Items, *, secret: str | None = None, acct: bool | None = None,
                  **kwargs: Any) -> RadiusReply:
        """``radclient`` to this server (from its namespace) with the first client's secret by default;
        ``acct`` picks the port (default: by ``code``: "acct" → accounting port)."""
        if acct is None:
            acct = code in ("acct", "accounting")
        return radclient(self.acct_addr if acct else self.auth_addr, code,
                         secret if secret is not None else self.nas[0].secret, attrs,
                         ns=kwargs.pop("ns", self.ns), **kwargs)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --- radclient ---------------------------------------------------------------------------------


@dataclass
class RadiusReply:
    """What ``radclient -x`` printed: the reply's code name (None: no reply) and its attributes."""

    code: str | None
    pairs: list[tuple[str, str]]
    stdout: str
    stderr: str
    returncode: int

    def get(self, name: str, default: str | None = None) -> str | None:
        for n, v in self.pairs:
            if n == name:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        return [v for n, v in self.pairs if n == name]

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(f"{name} not in the {self.code} reply: {self.pairs}")
        return v

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self.pairs)


_RECEIVED = re.compile(r"^Received (\S+) Id \d+ ")


def parse_radclient(stdout: str) -> tuple[str | None, list[tuple[str, str]]]:
    """The code and attributes of the (last) reply in ``radclient -x`` output."""
    code: str | None = None
    pairs: list[tuple[str, str]] = []
    inside = False
    for ln in stdout.splitlines():
        m = _RECEIVED.match(ln)
        if m:
            code, pairs, inside = m.group(1), [], True
            continue
        if ln.startswith(("Sent ", "(")) or not ln[:1].isspace():
            inside = False
            continue
        if inside:
            name, sep, value = ln.strip().partition(" = ")
            if sep:
                pairs.append((name, _unquote(value)))
    return code, pairs


def radclient(server: str, code: str, secret: str, attrs: Items, *, ns: NetNS | None = None,
              timeout: float = 2.0, retries: int = 1, extra_args: Sequence[str] = ()) -> RadiusReply:
    """Send one request with FreeRADIUS's ``radclient`` (``code``: auth, acct, status, coa, disconnect)
    to ``server`` ("host:port", default port by code) from namespace ``ns`` or the host, and return the
    parsed reply. No reply (timeout) gives ``code=None``; never raises for a reject or a NAK."""
    exe = find_program("radclient")
    if exe is None:
        raise FreeRadiusMissing("radclient not found: install the Debian package freeradius-utils")
    text = "\n".join(f"{_check_name(n)} = {quote(v)}" for n, v in _items(attrs)) + "\n"
    cmd = [exe, "-x", "-r", str(retries), "-t", str(timeout), *extra_args, server, code, secret]
    if ns is not None:
        cmd = ns.exec_cmd(cmd)
    p = subprocess.run(cmd, check=False, input=text, capture_output=True, text=True,
                       timeout=timeout * max(retries, 1) + 10)
    got, pairs = parse_radclient(p.stdout)
    return RadiusReply(got, pairs, p.stdout, p.stderr, p.returncode)
