"""A small SIP-over-UDP test client and the processes the Kamailio tests run.

No SIP library: the INVITEs are written by hand, so a test can put exactly what it wants on the
wire (forged headers, verstat parameters, Identity headers), and replies are parsed strictly
enough to catch a header injection (every header line is split out, folded lines included).
"""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent
REPO = INTEGRATION.parent.parent
CFG = INTEGRATION / "kamailio.cfg"
API_KEY = "nol_sandbox_standard_key"


@dataclass
class Reply:
    code: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""
    latency_ms: float = 0.0

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} appears {len(values)} times: {values}"
        return values[0] if values else None


def parse_reply(data: bytes) -> Reply:
    # the reply echoes the request's From/To/Via as they came, valid UTF-8 or not
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="surrogateescape")
    lines = head.split("\r\n")
    m = re.match(r"SIP/2\.0 (\d{3}) (.*)$", lines[0])
    assert m, f"not a SIP reply: {lines[0]!r}"
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        assert "\n" not in line and "\r" not in line, f"bare CR/LF in a header: {line!r}"
        if line[:1] in (" ", "\t"):
            # a folded continuation line: part of the previous header's value
            assert headers, "reply starts with a continuation line"
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        assert sep, f"header line without a colon: {line!r}"
        assert re.fullmatch(r"[A-Za-z0-9!%*_+`'~.-]+", name.strip()), f"bad header name {name!r}"
        headers.append((name.strip(), value.strip()))
    return Reply(int(m.group(1)), m.group(2), headers, data)


class SipClient:
    """Sends INVITEs over UDP from one socket and matches replies by Call-ID."""

    def __init__(self, server: tuple[str, int]):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local = self.sock.getsockname()
        self.ruris: dict[str, str] = {}

    def close(self) -> None:
        self.sock.close()

    def invite_bytes(
        self,
        caller: str,
        *,
        to: str = "+14155559999",
        from_uri: str | None = None,
        from_display: str | None = None,
        pai: str | None = None,
        extra: list[str] | None = None,
        call_id: str | None = None,
    ) -> tuple[bytes, str]:
        call_id = call_id or f"{random.getrandbits(64):016x}@nol-test"
        branch = f"z9hG4bK{random.getrandbits(48):012x}"
        host, port = self.local
        from_uri = from_uri or f"sip:{caller}@carrier.example;user=phone"
        disp = f'"{from_display}" ' if from_display is not None else ""
        self.ruris[call_id] = f"sip:{to}@sbc.example;user=phone"
        lines = [
            f"INVITE sip:{to}@sbc.example;user=phone SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: {disp}<{from_uri}>;tag={random.getrandbits(32):08x}",
            f"To: <sip:{to}@sbc.example;user=phone>",
            f"Call-ID: {call_id}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:{caller}@{host}:{port}>",
        ]
        if pai:
            lines.append(f"P-Asserted-Identity: {pai}")
        lines += extra or []
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode("utf-8"), call_id

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def ack(self, reply: Reply) -> None:
        """ACKs a final non-2xx reply to an INVITE, as a UAC must (RFC 3261 17.1.1.3): a
        transactional reply is retransmitted by Kamailio's tm until it is ACKed."""
        cid = reply.one("Call-ID")
        cseq = (reply.one("CSeq") or "").split()
        via = reply.all("Via")
        if reply.code < 300 or not cid or cid not in self.ruris or len(cseq) != 2 \
                or cseq[1] != "INVITE" or not via:
            return
        msg = "\r\n".join([
            f"ACK {self.ruris[cid]} SIP/2.0",
            f"Via: {via[0]}",
            "Max-Forwards: 70",
            f"From: {reply.one('From')}",
            f"To: {reply.one('To')}",
            f"Call-ID: {cid}",
            f"CSeq: {cseq[0]} ACK",
            "Content-Length: 0", "", "",
        ])
        self.send(msg.encode("utf-8", errors="surrogateescape"))

    def next_final(self, timeout: float) -> Reply | None:
        """The next final reply to an INVITE of this client (ACKed), or None after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            data, _ = self.sock.recvfrom(65535)
            now = time.monotonic()
            reply = parse_reply(data)
            if reply.code < 200:
                continue
            self.ack(reply)
            reply.latency_ms = now
            return reply

    def closed_loop(self, callers, outstanding: int, idle_timeout: float = 3.0, **kw):
        """Keeps `outstanding` INVITEs in flight, one for each caller of `callers` in turn,
        until every one was sent and answered (or nothing came for idle_timeout seconds).
        Returns (sent, replies): Call-ID -> (caller, send time); Call-ID -> Reply, whose
        latency_ms is counted from its own INVITE."""
        callers = iter(callers)
        sent: dict[str, tuple[str, float]] = {}
        replies: dict[str, Reply] = {}
        pending = 0

        def send_next() -> bool:
            caller = next(callers, None)
            if caller is None:
                return False
            data, cid = self.invite_bytes(caller, **kw)
            sent[cid] = (caller, time.monotonic())
            self.send(data)
            return True

        for _ in range(outstanding):
            if send_next():
                pending += 1
        while pending:
            reply = self.next_final(idle_timeout)
            if reply is None:
                break
            cid = reply.one("Call-ID")
            if cid not in sent or cid in replies:
                continue  # a retransmitted final reply
            reply.latency_ms = (reply.latency_ms - sent[cid][1]) * 1000.0
            replies[cid] = reply
            pending -= 1
            if send_next():
                pending += 1
        return sent, replies

    def recv_final(self, call_ids: set[str], timeout: float) -> dict[str, Reply]:
        """Waits for a final reply to each Call-ID; returns what arrived before the timeout."""
        got: dict[str, Reply] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(call_ids):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                break
            data, _ = self.sock.recvfrom(65535)
            now = time.monotonic()
            reply = parse_reply(data)
            if reply.code < 200:
                continue
            self.ack(reply)
            cid = reply.one("Call-ID")
            if cid in call_ids and cid not in got:
                reply.latency_ms = now
                got[cid] = reply
        return got

    def invite(self, caller: str, timeout: float = 3.0, **kw) -> Reply:
        data, cid = self.invite_bytes(caller, **kw)
        t0 = time.monotonic()
        self.send(data)
        got = self.recv_final({cid}, timeout)
        assert cid in got, f"no final reply to the INVITE from {caller} within {timeout}s"
        reply = got[cid]
        reply.latency_ms = (reply.latency_ms - t0) * 1000.0
        return reply

    def options(self, timeout: float = 0.5) -> Reply | None:
        cid = f"{random.getrandbits(64):016x}@nol-ping"
        host, port = self.local
        msg = (
            f"OPTIONS sip:ping@sbc.example SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{random.getrandbits(48):012x}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:ping@{host}>;tag=1\r\nTo: <sip:ping@sbc.example>\r\n"
            f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.send(msg)
        return self.recv_final({cid}, timeout).get(cid)


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies, however it dies, so no
    sandbox or kamailio outlives a crashed test run."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nol_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = Path(os.environ.get("NOL_BIN", target / "debug" / "nol"))
    assert path.exists(), f"{path} missing: cargo build -p nol-cli"
    return path


def module_path() -> Path:
    path = Path(os.environ.get("NOL_KAMAILIO_MODULE", REPO / "target/kamailio/modules/nol.so"))
    assert path.exists(), f"{path} missing: integrations/kamailio/build.sh"
    return path


class Sandbox:
    """`nol sandbox` on a free loopback port."""

    def __init__(self, fault: str | None = None, delay_ms: int = 0):
        args = [str(nol_binary()), "sandbox", "--listen", "127.0.0.1:0"]
        if fault:
            args += ["--fault", fault]
        if delay_ms:
            # slow but healthy: every answer correct and signed, after delay_ms
            args += ["--delay-ms", str(delay_ms)]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self.url = self.public_key = None
        deadline = time.monotonic() + 20
        assert self.proc.stdout is not None
        while (self.url is None or self.public_key is None) and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
            m = re.search(r"public key: (\S+)", line)
            if m:
                self.public_key = m.group(1)
        assert self.url and self.public_key, "the sandbox did not start"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class RedisServer:
    """Debian's redis-server on a free loopback port, without persistence: the shared cache
    of the cluster tests. `pause()`/`resume()` hang it (SIGSTOP/SIGCONT)."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server",
             "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def command(self, *args: str) -> str | None:
        """One command over RESP; the first line of the answer, or None when unreachable."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                req = f"*{len(args)}\r\n" + "".join(
                    f"${len(a.encode())}\r\n{a}\r\n" for a in args)
                c.sendall(req.encode())
                return c.recv(65536).decode(errors="replace").split("\r\n")[0]
        except OSError:
            return None

    def keys(self) -> int:
        reply = self.command("DBSIZE") or ""
        return int(reply[1:]) if reply.startswith(":") else -1

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class CountingProxy:
    """A TCP proxy in front of the sandbox that counts the lookups reaching it: it reads the
    HTTP/1.1 requests on each connection (keep-alive included: request line, headers,
    Content-Length body) and records the body of each POST /api/v1/inbound/lookup, then
    passes every byte on both ways unchanged. `nol sandbox` counts its lookups but does not
    print them: this counts the same requests at its door."""

    PATH = b"/api/v1/inbound/lookup"

    def __init__(self, target_url: str):
        m = re.match(r"http://([\d.]+):(\d+)$", target_url)
        assert m, target_url
        self.target = (m.group(1), int(m.group(2)))
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def lookups(self) -> int:
        with self.lock:
            return len(self.bodies)

    def numbers(self) -> list[str]:
        """The caller number of each lookup, as libnol sent it."""
        with self.lock:
            bodies = list(self.bodies)
        out = []
        for body in bodies:
            m = re.search(rb'"(?:number|caller|from)"\s*:\s*"([^"]*)"', body)
            out.append(m.group(1).decode() if m else "?")
        return out

    def reset(self) -> None:
        with self.lock:
            self.bodies.clear()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                buf += data
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buf[:end].decode("latin-1")
                    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                    size = int(m.group(1)) if m else 0
                    if len(buf) < end + 4 + size:
                        break
                    body = buf[end + 4:end + 4 + size]
                    line = head.split("\r\n", 1)[0].encode()
                    if line.startswith(b"POST ") and self.PATH in line:
                        with self.lock:
                            self.bodies.append(body)
                    buf = buf[end + 4 + size:]
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()


class HostileServer:
    """hostile_server.js (Node): signed answers with hostile display labels."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nol-hostile-")
        self.public_key = os.path.join(self.dir, "public.pem")
        self.proc = subprocess.Popen(
            ["node", str(HERE / "hostile_server.js"), self.public_key],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.match(r"listening (\d+)", line)
        assert m, f"hostile server did not start: {line!r}"
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Kamailio:
    """Debian's kamailio with integrations/kamailio/kamailio.cfg and nol.so."""

    def __init__(
        self,
        *,
        cfg: Path = CFG,
        env: dict[str, str] | None = None,
        children: int = 4,
        wrapper: list[str] | None = None,
        start_timeout: float = 15,
    ):
        self.port = free_udp_port()
        self.dir = tempfile.mkdtemp(prefix="nol-kamailio-")
        self.log_path = os.path.join(self.dir, "kamailio.log")
        e = {k: v for k, v in os.environ.items() if not k.startswith("NOL_")}
        e.update(
            {
                "NUMBERS_ONLINE_API_KEY": API_KEY,
                "NOL_LISTEN": f"udp:127.0.0.1:{self.port}",
                "NOL_MODULE": str(module_path()),
                "NOL_CHILDREN": str(children),
            }
        )
        e.update(env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            (wrapper or [])
            + [
                shutil.which("kamailio") or "/usr/sbin/kamailio",
                "-f", str(cfg), "-DD", "-E", "-e",
                "-P", os.path.join(self.dir, "kamailio.pid"),
                "-Y", self.dir, "-w", self.dir,
                "-m", "64", "-M", "8",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=e,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.client = SipClient(("127.0.0.1", self.port))
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kamailio exited at start:\n{self.read_log()}")
            reply = self.client.options(0.3)
            if reply is not None and reply.code == 200:
                return
        self.stop()
        raise AssertionError(f"kamailio did not answer OPTIONS:\n{self.read_log()}")

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        self.client.close()
        if self.proc.poll() is None:
            # the whole process group: kamailio's main process and its workers
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
