"""The OpenSIPS process the tests run, and its MI FIFO client. The SIP client, the sandbox and
the other stand-in servers are the Kamailio integration's (integrations/kamailio/tests/sip.py),
imported as they are."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent
REPO = INTEGRATION.parent.parent
sys.path.insert(0, str(REPO / "integrations" / "kamailio" / "tests"))

from sip import (  # noqa: E402  (the Kamailio tests' helpers)
    API_KEY,
    CountingProxy,
    HostileServer,
    Reply,
    Sandbox,
    SipClient,
    _die_with_parent,
    free_udp_port,
)

CFG = INTEGRATION / "opensips.cfg"
PREPROCESSOR = INTEGRATION / "cfg-env.sh"

__all__ = ["API_KEY", "CountingProxy", "HostileServer", "OpenSIPS", "Reply", "Sandbox",
           "SipClient", "HERE", "CFG"]


def build_dir() -> Path:
    path = Path(os.environ.get("NOL_OPENSIPS_DIR", ""))
    assert path.is_dir() and (path / "sbin" / "opensips").exists(), (
        f"NOL_OPENSIPS_DIR={path!s} is not a build: run integrations/opensips/build.sh")
    return path


class OpenSIPS:
    """OpenSIPS 3.6.8 (built by build.sh) with opensips.cfg (through cfg-env.sh) and nol.so.

    The benchmark (bench/opensips/bench.py) starts it too, with more shared memory (a
    transaction outlives its reply by tm's wait timer, 5 s), a quieter log and a larger
    receive buffer for its UAC."""

    def __init__(self, *, cfg: Path = CFG, env: dict[str, str] | None = None,
                 children: int = 4, start_timeout: float = 15, build: Path | None = None,
                 shm_mb: int = 128, pkg_mb: int = 16, log_level: int = 3,
                 rcvbuf: int | None = None):
        build = build or build_dir()
        self.port = free_udp_port()
        self.dir = tempfile.mkdtemp(prefix="nol-opensips-")
        self.fifo = os.path.join(self.dir, "fifo")
        self.log_path = os.path.join(self.dir, "opensips.log")
        e = {k: v for k, v in os.environ.items() if not k.startswith("NOL_")}
        e.update({
            "NUMBERS_ONLINE_API_KEY": API_KEY,
            "NOL_LISTEN": f"udp:127.0.0.1:{self.port}",
            "NOL_MPATH": str(build / "lib" / "modules") + "/",
            "NOL_CHILDREN": str(children),
            "NOL_MI_FIFO": self.fifo,
            "NOL_LOG_LEVEL": str(log_level),
        })
        e.update(env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(build / "sbin" / "opensips"), "-F", "-f", str(cfg), "-p", str(PREPROCESSOR),
             "-P", os.path.join(self.dir, "opensips.pid"), "-m", str(shm_mb), "-M", str(pkg_mb)],
            stdout=self.log, stderr=subprocess.STDOUT, env=e, cwd=self.dir,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.client = SipClient(("127.0.0.1", self.port))
        if rcvbuf:
            self.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"opensips exited at start:\n{self.read_log()}")
            reply = self.client.options(0.3)
            if reply is not None and reply.code == 200:
                return
        self.stop()
        raise AssertionError(f"opensips did not answer OPTIONS:\n{self.read_log()}")

    def read_log(self) -> str:
        self.log.flush()
        return Path(self.log_path).read_text(errors="replace")

    def mi(self, method: str, params=None, timeout: float = 5.0):
        """One MI command over mi_fifo (JSON-RPC); returns its result."""
        name = f"nol_reply_{os.getpid()}_{random.getrandbits(32):08x}"
        reply_path = os.path.join("/tmp", name)  # mi_fifo's default reply_dir
        os.mkfifo(reply_path, 0o666)
        out: list[bytes] = []

        def read() -> None:
            with open(reply_path, "rb") as f:
                out.append(f.read())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        try:
            req = {"jsonrpc": "2.0", "method": method, "id": 1}
            if params is not None:
                req["params"] = params
            with open(self.fifo, "w") as f:
                f.write(f":{name}:{json.dumps(req)}\n")
            t.join(timeout)
            assert out, f"no MI reply to {method}"
        finally:
            if t.is_alive():
                # unblock the reader
                with open(reply_path, "wb"):
                    pass
            os.unlink(reply_path)
        return json.loads(out[0].decode())["result"]

    def stats(self) -> dict[str, int]:
        result = self.mi("get_statistics", [["nol:"]])
        return {k.split(":", 1)[1]: int(v) for k, v in result.items()}

    def stop(self, timeout: float = 10) -> None:
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
