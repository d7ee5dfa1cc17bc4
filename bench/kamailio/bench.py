"""INVITEs per second and reply latency (p50/p99) through one Debian kamailio, three ways, in one
run against the same sandbox:

  no lookup        bench/kamailio/no_lookup.cfg: reply at once (the ceiling)
  libnol module    integrations/kamailio/kamailio.cfg + nol.so
  stock recipe     bench/kamailio/stock_http_client.cfg: http_client + jansson (the seed's recipe)

Each lookup configuration runs with the five directory numbers repeated (what a real SBC sees:
the same callers again; libnol answers from its cache, the recipe has none) and with a fresh
number for every INVITE (every lookup goes to the service), and once with the service hanging.
The load is closed-loop: WINDOW INVITEs outstanding, a new one sent per reply, for SECONDS per
row, the rows interleaved over ROUNDS rounds.

Run by bench/kamailio/run.sh, which builds everything first. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import select
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "integrations/kamailio/tests"))

from sip import Kamailio, Sandbox, SipClient, parse_reply  # noqa: E402

DIRECTORY = ["+14155551212", "+14155550100", "+14155550111", "+14155550122", "+14155550133"]
SCREENING = "sip:screening@pbx.example"


def fresh_numbers():
    """A new possible number for every INVITE (no answer can come from a cache)."""
    for area in itertools.cycle(["212", "312", "646", "718", "917", "213", "305", "404"]):
        base = random.randrange(0, 9_000_000)
        for n in range(base, base + 1_000_000):
            yield f"+1{area}{n:07d}"


def load(client: SipClient, numbers, seconds: float, window: int) -> dict:
    """Closed-loop load: `window` INVITEs outstanding; returns rate and latency."""
    numbers = iter(numbers)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lost = 0
    start = time.monotonic()
    end = start + seconds

    def send_one():
        data, cid = client.invite_bytes(next(numbers))
        sent_at[cid] = time.monotonic()
        client.send(data)

    for _ in range(window):
        send_one()
    while sent_at:
        now = time.monotonic()
        # a request unanswered for 3 s is lost (UDP): count it and move on
        for cid, t in list(sent_at.items()):
            if now - t > 3.0:
                del sent_at[cid]
                lost += 1
                if now < end:
                    send_one()
        r, _, _ = select.select([client.sock], [], [], 0.05)
        if not r:
            continue
        while True:
            try:
                data = client.sock.recv(65535, socket_flags())
            except BlockingIOError:
                break
            reply = parse_reply(data)
            if reply.code < 200:
                continue
            cid = reply.one("Call-ID")
            t = sent_at.pop(cid, None)
            if t is None:
                continue
            done = time.monotonic()
            latencies.append((done - t) * 1000.0)
            codes[reply.code] = codes.get(reply.code, 0) + 1
            if done < end:
                send_one()
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p):
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))]

    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "n": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": pct(50),
        "p99": pct(99),
        "max": latencies[-1] if latencies else float("nan"),
        "lost": lost,
        "codes": codes,
    }


def socket_flags():
    import socket

    return socket.MSG_DONTWAIT


def warm(client: SipClient, numbers) -> None:
    for n in numbers:
        client.invite(n, timeout=5.0)


def fmt(name: str, res: dict) -> str:
    codes = ", ".join(f"{c}×{n}" for c, n in sorted(res["codes"].items()))
    return (
        f"| {name} | {res['rate']:,.0f} | {res['p50']:.2f} | {res['p99']:.2f} | "
        f"{res['max']:.1f} | {res['n']:,} | {res['lost']} | {codes} |"
    )


def merge(results: list[dict]) -> dict:
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
        "lost": sum(r["lost"] for r in results),
        "codes": codes,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0, help="per row and round")
    ap.add_argument("--rounds", type=int, default=3, help="rows interleaved over rounds")
    ap.add_argument("--window", type=int, default=16, help="INVITEs outstanding")
    ap.add_argument("--children", type=int, default=4, help="kamailio UDP workers")
    ap.add_argument("--hang-seconds", type=float, default=3.0)
    args = ap.parse_args()

    results: dict[str, list[dict]] = {}
    order: list[str] = []

    def record(name: str, res: dict) -> None:
        if name not in results:
            results[name] = []
            order.append(name)
        results[name].append(res)

    sb = Sandbox()
    hang = Sandbox(fault="hang")
    common = {"NOL_SCREENING_CONTACT": SCREENING}
    configs = [
        ("no lookup", REPO / "bench/kamailio/no_lookup.cfg", {}),
        (
            "libnol module",
            REPO / "integrations/kamailio/kamailio.cfg",
            {"NOL_PUBLIC_KEY_FILE": sb.public_key, "NOL_BUDGET_MS": "400"},
        ),
        ("stock http_client + jansson", REPO / "bench/kamailio/stock_http_client.cfg", {}),
    ]
    try:
        # the rows are interleaved over rounds so that a busy moment on a shared machine
        # spreads over every configuration instead of landing on one
        for _ in range(args.rounds):
            for name, cfg, env in configs:
                k = Kamailio(
                    cfg=cfg, env={**common, **env, "NOL_BASE_URL": sb.url}, children=args.children
                )
                try:
                    if name == "no lookup":
                        record(name, load(k.client, itertools.cycle(DIRECTORY), args.seconds, args.window))
                        continue
                    warm(k.client, DIRECTORY)
                    record(
                        f"{name}, repeat callers",
                        load(k.client, itertools.cycle(DIRECTORY), args.seconds, args.window),
                    )
                    record(
                        f"{name}, a new caller each INVITE",
                        load(k.client, fresh_numbers(), args.seconds, args.window),
                    )
                finally:
                    k.stop()
                # the service hangs: every lookup runs into its timeout (a new kamailio each
                # round: libnol's circuit breaker starts closed)
                env_hang = {**common, **env, "NOL_BASE_URL": hang.url}
                if "NOL_PUBLIC_KEY_FILE" in env_hang:
                    env_hang["NOL_PUBLIC_KEY_FILE"] = hang.public_key
                k = Kamailio(cfg=cfg, env=env_hang, children=args.children)
                try:
                    record(
                        f"{name}, service hangs",
                        load(k.client, fresh_numbers(), args.hang_seconds, args.children),
                    )
                finally:
                    k.stop()
    finally:
        sb.stop()
        hang.stop()

    load_avg = os.getloadavg()[0]
    print(
        f"kamailio {args.children} UDP workers, {args.window} INVITEs outstanding "
        f"({args.children} while the service hangs), {args.rounds} rounds of {args.seconds:g} s "
        f"a row, {os.cpu_count()} cores shared by kamailio, the sandbox and the load generator "
        f"(load average {load_avg:.1f} at the end)\n"
    )
    print("| configuration | INVITEs/s | p50 ms | p99 ms | max ms | replies | lost | codes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name in order:
        print(fmt(name, merge(results[name])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
