#!/usr/bin/env python3
"""The Asterisk benchmark: calls per second through a real Asterisk 22's dialplan and lookup
latency (p50/p99), for each way of looking a caller up, against the same sandbox (`nol
sandbox`), once fast and once hanging (`--fault hang`):

    no lookup        the dialplan alone: what Asterisk costs per originated Local call
    module           res_nol.so, NolLookup()
    FastAGI          AGI(agi://...) to one `nol agi --listen` server
    AGI              AGI(nol,agi,...): a `nol` process per call
    CURL()+REGEX     the seed's Method 1 as written (plus the key header and the timeouts it
                     tells you to set); no signature check, no cache

Calls are Local/NUMBER-SEQ@CONTEXT channels originated over AMI (Async), at most --window at
once, for --seconds per row; a call is done when its OriginateResponse arrives (the dialplan
ran and hung up). Every call is a different caller (each row its own block of numbers), so no row is
measuring a cache hit. The lookup latency is the dialplan's own T0..T1 around the lookup
(STRFTIME, microseconds). Each service gets its own Asterisk and FastAGI server (fresh
clients, empty caches, closed breakers). Run through bench/asterisk/run.sh.
"""

import argparse
import os
import platform
import re
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "integrations/asterisk/tests"))
import conftest as c  # noqa: E402  (the tests' private Asterisk, sandbox and FastAGI helpers)

ROWS = [
    ("no lookup", "b-none"),
    ("module (res_nol.so)", "b-module"),
    ("FastAGI (nol agi --listen)", "b-fastagi"),
    ("AGI (nol agi, a process per call)", "b-agi"),
    ("CURL()+REGEX (seed recipe)", "b-curl"),
]


class AMI:
    def __init__(self, port, user, secret):
        end = time.time() + 20
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.2)
        self.s.settimeout(None)
        self.f = self.s.makefile("rb", buffering=0)
        self.f.readline()  # banner
        self.lock = threading.Lock()
        self.on_done = lambda aid, now: None
        self.send({"Action": "Login", "Username": user, "Secret": secret, "Events": "call"})
        msg = self.read()
        assert msg.get("Response") == "Success", msg
        threading.Thread(target=self.reader, daemon=True).start()

    def send(self, fields):
        data = "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        with self.lock:
            self.s.sendall(data.encode())

    def read(self):
        msg = {}
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            line = line.decode(errors="replace").rstrip("\r\n")
            if not line:
                if msg:
                    return msg
                continue
            k, _, v = line.partition(": ")
            msg[k] = v

    def reader(self):
        """Reads whole chunks and parses only the events it waits for (OriginateResponse, or an
        error response to an action): a parse per line of every event would make the driver,
        not Asterisk, the bottleneck at a thousand calls a second."""
        buf = b""
        try:
            while True:
                chunk = self.s.recv(1 << 16)
                if not chunk:
                    return
                buf += chunk
                *blocks, buf = buf.split(b"\r\n\r\n")
                done = []
                for b in blocks:
                    if not (b.startswith(b"Event: OriginateResponse") or b.startswith(b"Response: Error")):
                        continue
                    for line in b.split(b"\r\n"):
                        if line.startswith(b"ActionID: "):
                            done.append(line[10:].decode(errors="replace"))
                if done:
                    now = time.monotonic()
                    for aid in done:
                        self.on_done(aid, now)
        except OSError:
            pass


def run_row(ast, ami, row, context, seconds, window, max_calls=19000):
    """Originates calls for `seconds` with at most `window` in flight; returns stats. Every
    call of every row is a caller not seen before: a row's callers are +1415 5XX XXXX from
    its own block of 20,000 numbers."""
    base = 14155000000 + 20000 * row
    sem = threading.Semaphore(window)
    started, finished = {}, {}
    lock = threading.Lock()
    prefix = f"r{row}-"

    def on_done(aid, now):
        # the reader thread: a call of this row has ended, its slot is free
        with lock:
            if aid.startswith(prefix) and aid in started and aid not in finished:
                finished[aid] = now
                sem.release()

    ami.on_done = on_done
    t_start = time.monotonic()
    i = 0
    while time.monotonic() - t_start < seconds and i < max_calls:
        sem.acquire()
        number = base + i
        aid = f"{prefix}{i}"
        with lock:
            started[aid] = time.monotonic()
        ami.send({"Action": "Originate", "ActionID": aid,
                  "Channel": f"Local/{number}-{row}{i:05d}@{context}",
                  "Application": "Wait", "Data": "0", "Async": "true", "Timeout": "30000"})
        i += 1
    # the calls still in flight
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with lock:
            if len(finished) >= i:
                break
        time.sleep(0.01)
    with lock:
        done = [finished[k] - started[k] for k in finished]
        wall = max(finished.values(), default=time.monotonic()) - t_start
    # the dialplan's own lines
    time.sleep(0.5)
    pat = re.compile(r"NOLB\|\d+-" + str(row) + r"\d{5}\|([^|]*)\|([^|]*)\|([^|]*)\|([\d.]*)\|([\d.]*)\s*$")
    lat, actions, verified, reasons = [], {}, 0, {}
    for line in ast.log.read_text(errors="replace").splitlines():
        if "Executing [" in line:
            continue
        m = pat.search(line)
        if not m:
            continue
        action, ver, fo, t0, t1 = m.groups()
        if t0 and t1:
            lat.append((float(t1) - float(t0)) * 1000)
        actions[action] = actions.get(action, 0) + 1
        verified += ver == "1"
        if fo:
            reasons[fo] = reasons.get(fo, 0) + 1
    return {"calls": len(done), "sent": i, "wall": wall, "cps": len(done) / wall,
            "lat": sorted(lat), "actions": actions, "verified": verified, "reasons": reasons,
            "lines": len(lat)}


def pct(xs, p):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5, help="per row (default 5)")
    ap.add_argument("--window", type=int, default=16, help="calls in flight (default 16)")
    ap.add_argument("--alone-seconds", type=float, default=3,
                    help="per row, one call at a time: the latency without load (default 3)")
    ap.add_argument("--only", default="", help="comma-separated contexts (b-module,b-agi,...)")
    ap.add_argument("--services", default="fast,hanging")
    args = ap.parse_args()
    prefix, module = os.environ["NOL_ASTERISK_PREFIX"], os.environ["NOL_ASTERISK_MODULE"]
    budget = c.BUDGET_MS
    rows = [r for r in ROWS if not args.only or r[1] in args.only.split(",")]
    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')}  {platform.node()}  {platform.machine()}  "
          f"{os.cpu_count()} CPUs  {cpu_model()}")
    print(f"# load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"# Asterisk 22.10.1, budget {budget} ms (libnol budget_ms; CURL conn/http timeout), "
          f"window {args.window} calls in flight, {args.seconds:g} s per row, a new caller per call")
    print()
    print(f"| service | path | calls/s | lookup p50 / p99 ms, {args.window} in flight | "
          "lookup p50 / p99 ms, one at a time | calls | verified | NOL_ACTION (fail-open reasons) |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    results = {}
    for service in args.services.split(","):
        extra = ("--fault", "hang") if service == "hanging" else ()
        sb, url, key = c.start_sandbox(*extra)
        env = dict(os.environ, NUMBERS_ONLINE_API_KEY=c.SANDBOX_KEY, NOL_BASE_URL=url, NOL_PUBLIC_KEY=key)
        fa = c.Proc([c.nol_bin(), "agi", "--listen", "127.0.0.1:0", "--set", f"budget_ms={budget}"], env=env)
        addr = fa.line("FastAGI listening on ")
        threading.Thread(target=lambda: [None for _ in fa.p.stdout], daemon=True).start()
        port = c.free_port()
        dp = (HERE / "extensions.conf").read_text().replace("@BUDGET_S@", f"{budget / 1000:g}") \
            .replace("@BUDGET_MS@", str(budget))
        dpf = Path(os.environ.get("TMPDIR", "/tmp")) / f"nol-bench-ast-{os.getpid()}.conf"
        dpf.write_text(dp)
        ast = c.Asterisk(prefix, module, {"url": url, "key": key}, addr, dialplan=dpf,
                         manager=(port, "bench", "bench"), verbose=0)
        try:
            ami = AMI(port, "bench", "bench")
            for name, ctx in rows:
                rowid = 2 * len(results) + 1
                r = run_row(ast, ami, rowid, ctx, args.seconds, args.window)
                results[(service, ctx)] = r
                # one call at a time, callers not seen before (no cache hit either)
                alone = run_row(ast, ami, rowid + 1, ctx, args.alone_seconds, 1)
                outcome = ", ".join(f"{k or '(empty)'} {v}" for k, v in sorted(r["actions"].items()))
                if r["reasons"]:
                    outcome += " (" + ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) + ")"
                print(f"| {service} | {name} | {r['cps']:.0f} | {pct(r['lat'], 50):.2f} / "
                      f"{pct(r['lat'], 99):.2f} | {pct(alone['lat'], 50):.2f} / {pct(alone['lat'], 99):.2f} | "
                      f"{r['calls']} | {r['verified']} | {outcome} |", flush=True)
        finally:
            ast.stop()
            fa.stop()
            sb.stop()
            dpf.unlink(missing_ok=True)
    print()
    print(f"# load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    for service in args.services.split(","):
        agi = results.get((service, "b-agi"))
        if not agi or not agi["cps"]:
            continue
        for ctx, target in (("b-module", 20), ("b-fastagi", 5)):
            r = results.get((service, ctx))
            if r:
                ratio = r["cps"] / agi["cps"]
                print(f"# {service}: {ctx[2:]} / AGI calls/s = {ratio:.1f}x (target {target}x: "
                      f"{'met' if ratio >= target else 'NOT met'})")


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
