"""A private Asterisk 22 (built by integrations/asterisk/build.sh) with res_nol.so, the sandbox,
and a FastAGI server (`nol agi --listen`), for the end-to-end tests.

Environment (scripts/test-asterisk.sh sets them):
  NOL_ASTERISK_PREFIX   the Asterisk install prefix (build.sh's first printed line)
  NOL_ASTERISK_MODULE   res_nol.so (build.sh's last line)
  NOL_BIN               the `nol` binary (default target/release/nol, else target/debug/nol)
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SANDBOX_KEY = "nol_sandbox_standard_key"
BUDGET_MS = 300


def nol_bin():
    if os.environ.get("NOL_BIN"):
        return os.environ["NOL_BIN"]
    for p in (REPO / "target/debug/nol",):
        if p.exists():
            return str(p)
    raise RuntimeError("build nol first (cargo build -p nol-cli)")


class Proc:
    def __init__(self, args, env=None, log=None):
        self.log = open(log, "w") if log else subprocess.DEVNULL
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)

    def line(self, prefix, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            line = self.p.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise RuntimeError(f"no line {prefix!r}")

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()


def start_sandbox(*extra):
    p = Proc([nol_bin(), "sandbox", "--listen", "127.0.0.1:0", *extra])
    url = p.line("sandbox listening on ")
    key = p.line("public key: ")
    # keep its stdout drained
    import threading

    threading.Thread(target=lambda: [None for _ in p.p.stdout], daemon=True).start()
    return p, url, key


@pytest.fixture(scope="session")
def sandbox():
    p, url, key = start_sandbox()
    yield {"url": url, "key": key}
    p.stop()


@pytest.fixture(scope="session")
def hanging_sandbox():
    p, url, key = start_sandbox("--fault", "hang")
    yield {"url": url, "key": key}
    p.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def fastagi(sandbox):
    env = dict(os.environ, NUMBERS_ONLINE_API_KEY=SANDBOX_KEY, NOL_BASE_URL=sandbox["url"],
               NOL_PUBLIC_KEY=sandbox["key"])
    p = Proc([nol_bin(), "agi", "--listen", "127.0.0.1:0", "--set", f"budget_ms={BUDGET_MS}"], env=env)
    addr = p.line("FastAGI listening on ")
    yield addr
    p.stop()


def nol_conf(sandbox, **extra):
    lines = ["[general]", f"base_url = {sandbox['url']}", f"public_key_file = {sandbox['key']}",
             f"api_key = {SANDBOX_KEY}", f"budget_ms = {BUDGET_MS}"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


class Asterisk:
    def __init__(self, prefix, module, sandbox, fastagi_addr, dialplan=None, manager=None, verbose=3,
                 **conf):
        """conf: extra nol.conf settings; dialplan: an extensions.conf (default: the tests');
        manager: (port, user, secret) to enable AMI on 127.0.0.1 (the benchmark's originates)."""
        self.prefix = Path(prefix).resolve()
        self.dir = Path(tempfile.mkdtemp(prefix="nol-asterisk-"))
        d = self.dir
        for sub in ("etc", "modules", "lib", "db", "keys", "data", "agi-bin", "spool", "run", "log"):
            (d / sub).mkdir()
        # Every module of the build, plus res_nol.so, in a private modules dir.
        for m in (self.prefix / "lib/asterisk/modules").glob("*.so"):
            (d / "modules" / m.name).symlink_to(m)
        shutil.copy(module, d / "modules/res_nol.so")
        self.conf = d / "etc/asterisk.conf"
        self.conf.write_text(f"""[directories]
astetcdir => {d}/etc
astmoddir => {d}/modules
astvarlibdir => {d}/lib
astdbdir => {d}/db
astkeydir => {d}/keys
astdatadir => {d}/data
astagidir => {d}/agi-bin
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astsbindir => {self.prefix}/sbin

[options]
verbose = {verbose}
nofork = yes
""")
        (d / "etc/modules.conf").write_text("[modules]\nautoload = yes\n")
        (d / "etc/logger.conf").write_text("[general]\n[logfiles]\nfull => notice,warning,error,verbose\n")
        (d / "etc/nol.conf").write_text(nol_conf(sandbox, **conf))
        if manager:
            port, user, secret = manager
            (d / "etc/manager.conf").write_text(
                f"[general]\nenabled = yes\nport = {port}\nbindaddr = 127.0.0.1\n\n"
                f"[{user}]\nsecret = {secret}\nread = call\nwrite = originate,call\n"
                # the one event the benchmark waits for: every other event would cost
                # Asterisk a write and the driver a parse per call
                "eventfilter(action(include),name(OriginateResponse)) =\n")
        host, port = fastagi_addr.rsplit(":", 1)
        dialplan = Path(dialplan or HERE / "extensions.conf").read_text()
        dialplan = dialplan.replace("@NOL_BIN@", nol_bin()).replace("@FASTAGI@", f"{host}:{port}")
        dialplan = dialplan.replace("@SANDBOX_URL@", sandbox["url"]).replace("@SANDBOX_KEY@", SANDBOX_KEY)
        (d / "etc/extensions.conf").write_text(dialplan)
        self.log = d / "log/full"
        env = dict(os.environ, NUMBERS_ONLINE_API_KEY=SANDBOX_KEY, NOL_BASE_URL=sandbox["url"],
                   NOL_PUBLIC_KEY=sandbox["key"])
        self.p = subprocess.Popen([str(self.prefix / "sbin/asterisk"), "-C", str(self.conf), "-f", "-n", "-q"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                  stdin=subprocess.DEVNULL)
        end = time.time() + 30
        while time.time() < end:
            if "res_nol.so" in self.cli("module show like res_nol"):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("Asterisk did not start with res_nol.so")
        self.seq = 0

    def cli(self, command):
        r = subprocess.run([str(self.prefix / "sbin/asterisk"), "-C", str(self.conf), "-rx", command],
                           capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr

    def call(self, context, number, timeout=15):
        """Originates Local/NUMBER-SEQ@CONTEXT and returns the NOLTEST fields of its Verbose line."""
        self.seq += 1
        tag = f"{number}-{self.seq}"
        self.cli(f"channel originate Local/{tag}@{context} application Wait 1")
        return self.wait_line(tag, timeout)

    def wait_line(self, tag, timeout=15):
        end = time.time() + timeout
        pat = re.compile(r"NOLTEST\|" + re.escape(tag) + r"\|(.*)\|END=1$")
        while time.time() < end:
            if self.log.exists():
                for line in self.log.read_text(errors="replace").splitlines():
                    m = pat.search(line)
                    if m:
                        fields = dict(kv.split("=", 1) for kv in m.group(1).split("|") if "=" in kv)
                        return fields
            time.sleep(0.05)
        raise AssertionError(f"no NOLTEST line for {tag}")

    def stop(self):
        if self.p.poll() is None:
            self.cli("core stop now")
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


@pytest.fixture(scope="session")
def asterisk(sandbox, fastagi):
    prefix = os.environ.get("NOL_ASTERISK_PREFIX")
    module = os.environ.get("NOL_ASTERISK_MODULE")
    if not prefix or not module:
        pytest.skip("run through scripts/test-asterisk.sh (NOL_ASTERISK_PREFIX, NOL_ASTERISK_MODULE)")
    a = Asterisk(prefix, module, sandbox, fastagi)
    yield a
    a.stop()
    if os.environ.get("NOL_KEEP_ASTERISK_DIR") is None:
        shutil.rmtree(a.dir, ignore_errors=True)


class HostileServer:
    """hostile_server.js (Node): signed answers whose labels and receipts carry AGI commands
    after newlines, CR/LF, NUL, control characters and bidi overrides."""

    def __init__(self):
        node = shutil.which("node")
        if not node:
            pytest.fail("node is required (the hostile-label service, tests/hostile_server.js)")
        self.dir = tempfile.mkdtemp(prefix="nol-hostile-")
        self.key = os.path.join(self.dir, "public.pem")
        self.p = subprocess.Popen([node, str(HERE / "hostile_server.js"), self.key],
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.match(r"listening (\d+)", line)
        assert m, f"hostile server did not start: {line!r}"
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def stop(self):
        self.p.terminate()
        self.p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def hostile_asterisk():
    """A second private Asterisk whose module (with the caller-name opt-in), AGI programs and
    FastAGI server all talk to the hostile service."""
    prefix = os.environ.get("NOL_ASTERISK_PREFIX")
    module = os.environ.get("NOL_ASTERISK_MODULE")
    if not prefix or not module:
        pytest.skip("run through scripts/test-asterisk.sh (NOL_ASTERISK_PREFIX, NOL_ASTERISK_MODULE)")
    server = HostileServer()
    service = {"url": server.url, "key": server.key}
    env = dict(os.environ, NUMBERS_ONLINE_API_KEY=SANDBOX_KEY, NOL_BASE_URL=server.url,
               NOL_PUBLIC_KEY=server.key)
    fa = Proc([nol_bin(), "agi", "--listen", "127.0.0.1:0", "--set", f"budget_ms={BUDGET_MS}"], env=env)
    a = None
    try:
        addr = fa.line("FastAGI listening on ")
        a = Asterisk(prefix, module, service, addr, callerid_name="yes")
        yield a
    finally:
        if a:
            a.stop()
            if os.environ.get("NOL_KEEP_ASTERISK_DIR") is None:
                shutil.rmtree(a.dir, ignore_errors=True)
        fa.stop()
        server.stop()
