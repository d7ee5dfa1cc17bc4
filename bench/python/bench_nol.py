"""nol against what Python agents use today, in one run, against the sandbox on loopback:

1. verification: `nol.verify_response(body, keys)` against the seed's `verify` (json.loads +
   sorted json.dumps + cryptography's Ed25519) on the same signed bodies;
2. lookups: `nol.Client.lookup` against `requests` + the seed's `verify`, fresh (every call a
   request: nol's cache off) and cached (nol's cache; a dict with the answer's TTL for requests).

Prints a Markdown table (calls per second, p50 and p99 per call). Run: bash bench/python/run.sh
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import requests
from seed_verify import make_verify

import nol

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "bindings" / "python" / "tests"))
from conftest import SANDBOX_KEY, start_sandbox, stop  # noqa: E402

DIRECTORY = ["+14155551212", "+14155550100", "+14155550111", "+14155550122", "+14155550133"]
VERSTATS = [None, "TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation"]
QUICK = os.environ.get("NOL_BENCH_QUICK") == "1"


def timed(fn, items, min_seconds: float):
    """Calls fn on items round-robin for at least min_seconds; per-call times in seconds."""
    times = []
    n = len(items)
    i = 0
    deadline = time.perf_counter() + min_seconds
    while time.perf_counter() < deadline or i < n:
        item = items[i % n]
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
        i += 1
    return times


def row(name: str, times: list[float]) -> tuple[str, float, float, float]:
    times = sorted(times)
    per_s = len(times) / sum(times)
    p50 = times[len(times) // 2] * 1e6
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6
    return name, per_s, p50, p99


def fmt(rows) -> str:
    out = ["| benchmark | calls/s | p50 (µs) | p99 (µs) |", "|---|---:|---:|---:|"]
    for name, per_s, p50, p99 in rows:
        out.append(f"| {name} | {per_s:,.0f} | {p50:,.1f} | {p99:,.1f} |")
    return "\n".join(out)


def main() -> None:
    seconds = 0.5 if QUICK else 3.0
    sb = start_sandbox()
    try:
        pem = sb.public_key_pem
        keys = nol.TrustedKeys(pem)
        seed_verify = make_verify(pem.encode())

        # The same signed bodies for both: every directory entry and unknown numbers, with and
        # without verstats.
        bodies = []
        for i, number in enumerate(DIRECTORY + [f"+1415555{7000 + i}" for i in range(15)]):
            bodies.append(sb.raw_lookup(number, VERSTATS[i % len(VERSTATS)]))
        agree = sum(nol.verify_response(b, keys) == seed_verify(json.loads(b)) for b in bodies)
        assert all(nol.verify_response(b, keys) for b in bodies)

        rows = [
            row(
                "seed `verify` (json.loads + verify)",
                timed(lambda b: seed_verify(json.loads(b)), bodies, seconds),
            ),
            row(
                "seed `verify` on an already-parsed dict",
                timed(seed_verify, [json.loads(b) for b in bodies], seconds),
            ),
            row(
                "`nol.verify_response(body, TrustedKeys)`",
                timed(lambda b: nol.verify_response(b, keys), bodies, seconds),
            ),
            row(
                "`nol.verify_response(body, pem_str)`",
                timed(lambda b: nol.verify_response(b, pem), bodies, seconds),
            ),
        ]
        verify_speedup = rows[0][1] and rows[2][1] / rows[0][1]

        # Lookups over HTTP on loopback.
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {SANDBOX_KEY}"
        url = sb.url + "/api/v1/inbound/lookup"

        def requests_lookup(number: str) -> dict:
            try:
                r = session.post(
                    url, json={"number": number, "context": "inbound_voice"}, timeout=2
                )
                resp = r.json()
                return resp if seed_verify(resp) else {}
            except Exception:
                return {}

        cache: dict[str, tuple[float, dict]] = {}

        def requests_cached(number: str) -> dict:
            hit = cache.get(number)
            now = time.monotonic()
            if hit and hit[0] > now:
                return hit[1]
            resp = requests_lookup(number)
            cache[number] = (now + resp.get("ttl_seconds", 0), resp)
            return resp

        fresh = nol.Client(
            SANDBOX_KEY, sb.url, keys, budget_ms=2000, cache_size=0, circuit_breaker=False
        )
        cached = nol.Client(SANDBOX_KEY, sb.url, keys, budget_ms=2000, circuit_breaker=False)
        for n in DIRECTORY:
            assert cached.lookup(n).verified and requests_cached(n)
        lookup_rows = [
            row("fresh: `requests` + seed `verify`", timed(requests_lookup, DIRECTORY, seconds)),
            row("fresh: `nol.Client.lookup` (cache off)", timed(fresh.lookup, DIRECTORY, seconds)),
            row(
                "cached: `requests` + seed `verify` + dict cache",
                timed(requests_cached, DIRECTORY, seconds),
            ),
            row("cached: `nol.Client.lookup`", timed(cached.lookup, DIRECTORY, seconds)),
        ]
        assert fresh.stats().fail_open == {}, fresh.stats()
        fresh_speedup = lookup_rows[1][1] / lookup_rows[0][1]
        cached_speedup = lookup_rows[3][1] / lookup_rows[2][1]
    finally:
        stop(sb)

    print(f"Signed bodies: {len(bodies)}; seed and nol agree on {agree}/{len(bodies)}.\n")
    print(fmt(rows))
    print(f"\nnol.verify_response is {verify_speedup:.1f}x the seed's verify (target: 3x).\n")
    print(fmt(lookup_rows))
    print(
        f"\nnol.Client.lookup: fresh {fresh_speedup:.1f}x, cached {cached_speedup:.1f}x "
        "requests + seed verify."
    )
    if verify_speedup < 3:
        sys.exit("nol.verify_response is under the 3x target")


if __name__ == "__main__":
    main()
