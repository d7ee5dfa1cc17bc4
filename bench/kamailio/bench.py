"""INVITEs per second and call-setup delay (final reply p50/p99/max) through one Debian
kamailio, in one run, for every configuration x service x caller mix:

  configurations
    no lookup                   bench/kamailio/no_lookup.cfg: reply at once (the ceiling)
    libnol, non-blocking        integrations/kamailio/kamailio.cfg + nol.so (the shipped cfg:
                                skipped, with a note, while it is still the blocking one or
                                does not start)
    libnol, blocking            bench/kamailio/blocking_module.cfg + nol.so (kamailio.cfg as it
                                was before the non-blocking module: nol_lookup() holds the worker;
                                NOL_KAMAILIO_BLOCKING_MODULE names another nol.so for this row)
    http_client recipe          bench/kamailio/stock_http_client.cfg: http_client + jansson,
                                blocking, 1 s timeout (Debian's stock modules)
    http_async_client recipe    bench/kamailio/stock_http_async_client.cfg: the seed's recipe,
                                http_async_client (built by build-http-async.sh) + jansson,
                                the transaction suspended, 400 ms timeout, no signature check
  service     fast (nol sandbox), slow (nol sandbox --delay-ms 250: every answer correct, late),
              hangs (nol sandbox --fault hang)
  callers     repeat (the five directory numbers, after one INVITE each to warm any cache)
              new (a fresh number for every INVITE: every lookup goes to the service)

Each row gets a fresh kamailio (caches empty, libnol's circuit breaker closed). The load is
closed-loop from one UDP socket: WINDOW INVITEs outstanding (HANG_WINDOW while the service
hangs), a new one sent per final reply, for SECONDS, then the outstanding ones drained. The
client behaves as a UAC does on UDP: it retransmits an unanswered INVITE (RFC 3261 timer A:
500 ms, doubling), gives up after timer B (32 s: "lost"), and ACKs every final reply (so a
stateful server stops retransmitting it). The delay is from the first transmission to the
first final reply.

Run by bench/kamailio/run.sh, which builds everything first. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import platform
import random
import re
import select
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "integrations/kamailio/tests"))

from sip import Kamailio, Sandbox, SipClient, parse_reply  # noqa: E402

DIRECTORY = ["+14155551212", "+14155550100", "+14155550111", "+14155550122", "+14155550133"]
SCREENING = "sip:screening@pbx.example"
SHIPPED_CFG = REPO / "integrations/kamailio/kamailio.cfg"
BLOCKING_CFG = HERE / "blocking_module.cfg"
T1 = 0.5


def fresh_numbers():
    """A new possible number for every INVITE (no answer can come from a cache)."""
    for area in itertools.cycle(["212", "312", "646", "718", "917", "213", "305", "404"]):
        base = random.randrange(0, 9_000_000)
        for n in range(base, base + 1_000_000):
            yield f"+1{area}{n:07d}"


def ack_for(invite: bytes, to_header: str) -> bytes:
    """The ACK of a non-2xx final reply (RFC 3261 17.1.1.3): same R-URI, Via branch, From,
    Call-ID and CSeq number as the INVITE, the To of the reply."""
    lines = invite.split(b"\r\n")
    ruri = lines[0].split(b" ")[1]
    keep = {}
    for line in lines[1:]:
        name = line.split(b":", 1)[0].lower()
        if name in (b"via", b"from", b"call-id"):
            keep[name] = line
    return b"\r\n".join(
        [
            b"ACK " + ruri + b" SIP/2.0",
            keep[b"via"],
            b"Max-Forwards: 70",
            keep[b"from"],
            b"To: " + to_header.encode(),
            keep[b"call-id"],
            b"CSeq: 1 ACK",
            b"Content-Length: 0",
            b"",
            b"",
        ]
    )


def load(client: SipClient, numbers, seconds: float, window: int, retransmit: bool,
         give_up: float) -> dict:
    """Closed-loop load: `window` INVITEs outstanding; returns rate and latency."""
    numbers = iter(numbers)
    # cid -> [first sent, bytes, retransmission interval]
    pending: dict[str, list] = {}
    timers: list[tuple[float, str]] = []
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lost = rtx = 0
    start = time.monotonic()
    end = start + seconds

    def send_one():
        data, cid = client.invite_bytes(next(numbers))
        now = time.monotonic()
        pending[cid] = [now, data, T1]
        heapq.heappush(timers, (now + (T1 if retransmit else give_up), cid))
        client.send(data)

    for _ in range(window):
        send_one()
    while pending:
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, cid = heapq.heappop(timers)
            p = pending.get(cid)
            if p is None:
                continue
            if now - p[0] >= give_up:
                del pending[cid]
                lost += 1
                if now < end:
                    send_one()
                continue
            # timer A: retransmit, doubling
            client.send(p[1])
            rtx += 1
            p[2] *= 2
            heapq.heappush(timers, (min(now + p[2], p[0] + give_up), cid))
        wait = max(0.0, min(0.05, timers[0][0] - now)) if timers else 0.05
        r, _, _ = select.select([client.sock], [], [], wait)
        if not r:
            continue
        while True:
            try:
                data = client.sock.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            reply = parse_reply(data)
            if reply.code < 200:
                continue
            cid = reply.one("Call-ID")
            p = pending.pop(cid, None)
            if p is None:
                continue  # a retransmitted final reply (our ACK crossed it): already counted
            done = time.monotonic()
            client.send(ack_for(p[1], reply.one("To") or ""))
            latencies.append((done - p[0]) * 1000.0)
            codes[reply.code] = codes.get(reply.code, 0) + 1
            if done < end:
                send_one()
    return {
        "latencies": latencies,
        "elapsed": time.monotonic() - start,
        "lost": lost,
        "rtx": rtx,
        "codes": codes,
    }


def warm(client: SipClient, numbers) -> None:
    for n in numbers:
        client.invite(n, timeout=5.0)


def merge(results: list[dict], over_ms: float) -> dict:
    """One row from several rounds: replies over the time they took, percentiles over all."""
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = sum(r["elapsed"] for r in results)
    codes: dict[int, int] = {}
    for r in results:
        for c, n in r["codes"].items():
            codes[c] = codes.get(c, 0) + n

    def pct(p):
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))]

    return {
        "n": len(latencies),
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50": pct(50),
        "p99": pct(99),
        "max": latencies[-1] if latencies else float("nan"),
        "over": sum(1 for x in latencies if x > over_ms),
        "lost": sum(r["lost"] for r in results),
        "rtx": sum(r["rtx"] for r in results),
        "codes": codes,
    }


def ms(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fmt(name: str, service: str, callers: str, res: dict) -> str:
    codes = ", ".join(f"{c}×{n}" for c, n in sorted(res["codes"].items()))
    return (
        f"| {name} | {service} | {callers} | {res['rate']:,.0f} | {ms(res['p50'])} | "
        f"{ms(res['p99'])} | {ms(res['max'])} | {res['n']:,} | {res['over']:,} | "
        f"{res['rtx']:,} | {res['lost']} | {codes} |"
    )


def shipped_is_blocking() -> bool:
    """True while integrations/kamailio/kamailio.cfg is still the blocking cfg (the frozen
    copy in bench/ is it plus a header)."""
    frozen = BLOCKING_CFG.read_text()
    body = frozen.split("#\n# numbers.online SIP redirect server", 1)[-1]
    return SHIPPED_CFG.read_text().endswith(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="load per row and round")
    ap.add_argument("--rounds", type=int, default=1, help="rows repeated (merged) over rounds")
    ap.add_argument("--window", type=int, default=64, help="INVITEs outstanding")
    ap.add_argument("--hang-window", type=int, default=32, help="... while the service hangs")
    ap.add_argument("--children", type=int, default=4, help="kamailio UDP workers")
    ap.add_argument("--budget-ms", type=int, default=400, help="libnol budget, async recipe timeout")
    ap.add_argument("--delay-ms", type=int, default=250, help="the slow service's delay")
    ap.add_argument("--give-up", type=float, default=64 * T1, help="timer B, seconds")
    ap.add_argument("--no-retransmit", action="store_true", help="no timer A retransmissions")
    ap.add_argument(
        "--only", default="", help="comma-separated substrings: run only matching configurations"
    )
    ap.add_argument("--services", default="fast,slow,hangs")
    ap.add_argument("--callers", default="repeat,new")
    args = ap.parse_args()

    http_async = os.environ.get("NOL_HTTP_ASYNC_MODULE", "")
    sandboxes = {
        "fast": Sandbox(),
        "slow": Sandbox(delay_ms=args.delay_ms),
        "hangs": Sandbox(fault="hang"),
    }
    services = [s for s in args.services.split(",") if s]
    callers_all = [c for c in args.callers.split(",") if c]
    common = {"NOL_SCREENING_CONTACT": SCREENING, "NOL_BUDGET_MS": str(args.budget_ms)}
    libnol_env = lambda sb: {"NOL_PUBLIC_KEY_FILE": sb.public_key}  # noqa: E731
    # the blocking row may need an older nol.so (one that still has the blocking nol_lookup())
    blocking_module = os.environ.get("NOL_KAMAILIO_BLOCKING_MODULE", "")
    blocking_env = lambda sb: {  # noqa: E731
        **libnol_env(sb), **({"NOL_MODULE": blocking_module} if blocking_module else {})
    }
    configs = [
        ("no lookup", HERE / "no_lookup.cfg", lambda sb: {}, None),
        (
            "libnol, non-blocking",
            SHIPPED_CFG,
            libnol_env,
            "the shipped kamailio.cfg is still the blocking one (the non-blocking module has "
            "not landed)" if shipped_is_blocking() else None,
        ),
        ("libnol, blocking", BLOCKING_CFG, blocking_env, None),
        ("http_client recipe", HERE / "stock_http_client.cfg", lambda sb: {}, None),
        (
            "http_async_client recipe",
            HERE / "stock_http_async_client.cfg",
            lambda sb: {"NOL_HTTP_ASYNC_MODULE": http_async},
            None if http_async and Path(http_async).exists()
            else "http_async_client.so not built (bench/kamailio/build-http-async.sh)",
        ),
    ]
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        configs = [c for c in configs if any(w in c[0] for w in want)]

    rows: list[tuple[str, str, str]] = []
    results: dict[tuple[str, str, str], list[dict]] = {}
    skipped: dict[str, str] = {}
    try:
        for _ in range(args.rounds):
            for name, cfg, env_of, skip in configs:
                if skip:
                    skipped[name] = skip
                    continue
                if name in skipped:
                    continue
                matrix = (
                    [("-", "repeat")] if name == "no lookup"
                    else [(s, c) for s in services for c in callers_all]
                )
                for service, callers in matrix:
                    sb = sandboxes["fast" if service == "-" else service]
                    env = {**common, **env_of(sb), "NOL_BASE_URL": sb.url}
                    try:
                        k = Kamailio(cfg=cfg, env=env, children=args.children)
                    except AssertionError as e:
                        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
                        first = next(
                            (ln for ln in text.splitlines() if "ERROR" in ln),
                            text.splitlines()[0] if text else "?",
                        )
                        m = re.search(r"failed to find command (\w+)", first)
                        skipped[name] = (
                            f"{cfg.name} calls {m.group(1)}(), which this nol.so does not have"
                            if m
                            else f"kamailio did not start with {cfg.name}: "
                            + first.split("ERROR:", 1)[-1].strip()[:160]
                        )
                        break
                    try:
                        if callers == "repeat":
                            if service != "hangs":
                                warm(k.client, DIRECTORY)
                            numbers = itertools.cycle(DIRECTORY)
                        else:
                            numbers = fresh_numbers()
                        window = args.hang_window if service == "hangs" else args.window
                        res = load(
                            k.client, numbers, args.seconds, window,
                            not args.no_retransmit, args.give_up,
                        )
                    finally:
                        k.stop()
                    key = (name, service, callers)
                    if key not in results:
                        results[key] = []
                        rows.append(key)
                    results[key].append(res)
                    m = merge([res], args.budget_ms + 100)
                    print(f"  {fmt(*key, m)}", file=sys.stderr, flush=True)
    finally:
        for sb in sandboxes.values():
            sb.stop()

    load_avg = os.getloadavg()[0]
    print(
        f"{time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}) shared by kamailio, the sandbox and "
        f"the load generator (load average {load_avg:.1f} at the end). kamailio "
        f"{args.children} UDP workers; {args.window} INVITEs outstanding ({args.hang_window} "
        f"while the service hangs); budget / HTTP timeout {args.budget_ms} ms; slow service "
        f"{args.delay_ms} ms; {args.rounds} round(s) of {args.seconds:g} s a row; "
        f"{'no retransmissions' if args.no_retransmit else 'UAC retransmits on timer A'}.\n"
    )
    print(
        f"| configuration | service | callers | INVITEs/s | p50 ms | p99 ms | max ms | replies "
        f"| > {args.budget_ms + 100} ms | retransmitted | lost | codes |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key in rows:
        print(fmt(*key, merge(results[key], args.budget_ms + 100)))
    for name, why in skipped.items():
        print(f"| {name} | | | not measured: {why} | | | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
