"""Fixtures: the sandbox (the stand-in numbers.online server) started by the tests themselves.

The `nol` binary comes from `$NOL_BIN`, else `target/debug/nol` of this checkout, built with
cargo when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nol

ROOT = Path(__file__).resolve().parents[3]
SANDBOX_KEY = "nol_sandbox_standard_key"
FREE_KEY = "nol_sandbox_free_key"
# The contract's tightest budget is the Kamailio path's sub-500 ms; tests use 300 ms and allow a
# generous margin for a loaded 2-core machine.
BUDGET_MS = 300
MARGIN_S = 0.25

FAULTS = [
    "hang",
    "drip",
    "slow-body",
    "reset",
    "close",
    "500",
    "503",
    "429",
    "401",
    "non-json",
    "truncated",
    "huge",
    "wrong-types",
    "bad-signature",
    "no-signature",
    "redirect",
]


def fault_number(fault: str) -> str:
    """The sandbox's per-number fault: +141555509NN, NN = 01..16 in FAULTS order."""
    return f"+14155550{900 + FAULTS.index(fault) + 1}"


def nol_binary() -> Path:
    env = os.environ.get("NOL_BIN")
    if env:
        return Path(env)
    path = ROOT / "target" / "debug" / "nol"
    if not path.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "nol-cli"], cwd=ROOT, check=True)
    return path


@dataclass
class Sandbox:
    url: str
    public_key_path: Path
    process: subprocess.Popen

    @property
    def public_key_pem(self) -> str:
        return self.public_key_path.read_text()

    def client(self, **options) -> nol.Client:
        options.setdefault("budget_ms", BUDGET_MS)
        return nol.Client(SANDBOX_KEY, self.url, self.public_key_pem, **options)

    def async_client(self, **options) -> nol.AsyncClient:
        options.setdefault("budget_ms", BUDGET_MS)
        return nol.AsyncClient(SANDBOX_KEY, self.url, self.public_key_pem, **options)

    def raw_lookup(self, number: str, verstat: str | None = None) -> bytes:
        """The signed body exactly as the service sends it, fetched without libnol."""
        body = {"number": number, "context": "inbound_voice"}
        if verstat:
            body["verstat"] = verstat
        req = urllib.request.Request(
            self.url + "/api/v1/inbound/lookup",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {SANDBOX_KEY}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read()


def start_sandbox(fault: str | None = None) -> Sandbox:
    cmd = [str(nol_binary()), "sandbox", "--listen", "127.0.0.1:0"]
    if fault:
        cmd += ["--fault", fault]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = key = None
    for line in proc.stdout:
        if m := re.match(r"sandbox listening on (\S+)", line):
            url = m.group(1)
        elif m := re.match(r"public key: (\S+)", line):
            key = Path(m.group(1))
        if url and key:
            break
    if not (url and key):
        proc.kill()
        proc.wait()
        raise RuntimeError(
            f"the sandbox did not start: {proc.stderr.read() if proc.stderr else ''}"
        )
    return Sandbox(url, key, proc)


def stop(sb: Sandbox) -> None:
    sb.process.terminate()
    sb.process.wait(timeout=10)
    for stream in (sb.process.stdout, sb.process.stderr):
        if stream:
            stream.close()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    sb = start_sandbox()
    yield sb
    stop(sb)


@pytest.fixture(scope="session")
def hanging_sandbox() -> Iterator[Sandbox]:
    sb = start_sandbox("hang")
    yield sb
    stop(sb)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Debian's redis-server on a free loopback port, without persistence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
