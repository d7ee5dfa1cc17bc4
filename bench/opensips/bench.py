"""INVITEs per second and call-setup delay (final reply p50/p99/max) through one OpenSIPS 3.6.8,
in one run, for every configuration x service x caller mix (issue 14):

  configurations
    no lookup                   bench/opensips/no_lookup.cfg: reply at once (the ceiling)
    libnol module               integrations/opensips/opensips.cfg + nol.so (the shipped cfg:
                                async(nol_lookup()), the transaction suspended)
    rest_client recipe          bench/opensips/rest_client.cfg: the seed's recipe, rest_client +
                                json, rest_post() blocking its worker, 1 s timeout (whole
                                seconds), stateless replies, no signature check
    rest_client recipe, async   the same cfg with NOL_RECIPE_ASYNC=1: async(rest_post()) (not
                                in the seed; rest_client can do it), same 1 s timeout
  service     fast (nol sandbox), slow (nol sandbox --delay-ms 250: every answer correct, late),
              hangs (nol sandbox --fault hang)
  callers     repeat (the five directory numbers, after one INVITE each to warm any cache)
              new (a fresh number for every INVITE: every lookup goes to the service)

The load generator, the sandbox wrapper and the table are the Kamailio benchmark's
(bench/kamailio/bench.py, loaded from its file), which uses the Kamailio tests' SIP client
(integrations/kamailio/tests/sip.py). Each row gets a fresh opensips (caches empty, libnol's
breakers closed). Closed loop from one UDP socket: WINDOW INVITEs outstanding (HANG_WINDOW while
the service hangs), a new one sent per final reply, for SECONDS, then the outstanding ones
drained; the UAC retransmits on RFC 3261 timer A (500 ms, doubling), gives up after timer B
(32 s: "lost") and ACKs every final reply. The delay is from an INVITE's first transmission to
its first final reply.

Run by bench/opensips/run.sh, which builds everything first. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import platform
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "integrations/kamailio/tests"))
sys.path.insert(0, str(REPO / "integrations/opensips/tests"))

_spec = importlib.util.spec_from_file_location("kamailio_bench", REPO / "bench/kamailio/bench.py")
kb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kb)  # type: ignore[union-attr]

from osips import OpenSIPS  # noqa: E402  (the tests' launcher)

SHIPPED_CFG = REPO / "integrations/opensips/opensips.cfg"
RECIPE_CFG = HERE / "rest_client.cfg"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="load per row and round")
    ap.add_argument("--rounds", type=int, default=1, help="rows repeated (merged) over rounds")
    ap.add_argument("--window", type=int, default=64, help="INVITEs outstanding")
    ap.add_argument("--hang-window", type=int, default=32, help="... while the service hangs")
    ap.add_argument("--children", type=int, default=4, help="opensips UDP workers")
    ap.add_argument("--budget-ms", type=int, default=400, help="libnol budget")
    ap.add_argument("--recipe-timeout", type=int, default=1,
                    help="rest_client connection/curl timeout, whole seconds (1 is its least)")
    ap.add_argument("--delay-ms", type=int, default=250, help="the slow service's delay")
    ap.add_argument("--shm-mb", type=int, default=1024,
                    help="opensips -m (tm keeps each transaction, about 13 KB, 5 s after its reply)")
    ap.add_argument("--give-up", type=float, default=64 * kb.T1, help="timer B, seconds")
    ap.add_argument("--no-retransmit", action="store_true", help="no timer A retransmissions")
    ap.add_argument(
        "--only", default="", help="comma-separated substrings: run only matching configurations"
    )
    ap.add_argument("--services", default="fast,slow,hangs")
    ap.add_argument("--callers", default="repeat,new")
    args = ap.parse_args()

    build = Path(os.environ.get("NOL_OPENSIPS_DIR", "")).resolve()
    assert (build / "sbin" / "opensips").exists(), (
        f"NOL_OPENSIPS_DIR={build!s} is not a build: run integrations/opensips/build.sh")
    recipe_mpath = os.environ.get("NOL_RECIPE_MPATH", "")
    recipe_skip = (
        None if recipe_mpath and (Path(recipe_mpath) / "rest_client.so").exists()
        and (Path(recipe_mpath) / "json.so").exists()
        else "rest_client.so / json.so not built (bench/opensips/build-recipe.sh)"
    )

    sandboxes = {
        "fast": kb.Sandbox(),
        "slow": kb.Sandbox(delay_ms=args.delay_ms),
        "hangs": kb.Sandbox(fault="hang"),
    }
    services = [s for s in args.services.split(",") if s]
    callers_all = [c for c in args.callers.split(",") if c]
    common = {"NOL_SCREENING_CONTACT": kb.SCREENING, "NOL_BUDGET_MS": str(args.budget_ms)}
    recipe_env = {"NOL_RECIPE_MPATH": recipe_mpath, "NOL_RECIPE_TIMEOUT": str(args.recipe_timeout)}
    configs = [
        ("no lookup", HERE / "no_lookup.cfg", lambda sb: {}, None),
        ("libnol module", SHIPPED_CFG, lambda sb: {"NOL_PUBLIC_KEY_FILE": sb.public_key}, None),
        ("rest_client recipe", RECIPE_CFG, lambda sb: {**recipe_env, "NOL_RECIPE_ASYNC": "0"},
         recipe_skip),
        ("rest_client recipe, async", RECIPE_CFG,
         lambda sb: {**recipe_env, "NOL_RECIPE_ASYNC": "1"}, recipe_skip),
    ]
    if args.only:
        want = [w.strip() for w in args.only.split(",") if w.strip()]
        configs = [c for c in configs if any(w in c[0] for w in want)]

    rows: list[tuple[str, str, str]] = []
    results: dict[tuple[str, str, str], list[dict]] = {}
    skipped: dict[str, str] = {}
    loads: list[float] = []
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
                        # the UAC's receive buffer: 64 replies (and tm's retransmissions of
                        # them) can arrive while the load generator is descheduled; at the
                        # default (208 KB) some were dropped and came back only with tm's
                        # retransmission 500 ms later
                        o = OpenSIPS(build=build, cfg=cfg, env=env, children=args.children,
                                     shm_mb=args.shm_mb, pkg_mb=32, log_level=1,
                                     rcvbuf=4 << 20)
                    except AssertionError as e:
                        text = str(e)
                        first = next(
                            (ln for ln in text.splitlines() if "ERROR" in ln or "CRITICAL" in ln),
                            text.splitlines()[0] if text else "?",
                        )
                        skipped[name] = (f"opensips did not start with {cfg.name}: "
                                         + re.sub(r"^.*?(ERROR|CRITICAL):", "", first)[:160])
                        break
                    try:
                        if callers == "repeat":
                            if service != "hangs":
                                kb.warm(o.client, kb.DIRECTORY)
                            numbers = itertools.cycle(kb.DIRECTORY)
                        else:
                            numbers = kb.fresh_numbers()
                        window = args.hang_window if service == "hangs" else args.window
                        res = kb.load(
                            o.client, numbers, args.seconds, window,
                            not args.no_retransmit, args.give_up,
                        )
                        loads.append(os.getloadavg()[0])
                    finally:
                        o.stop()
                    key = (name, service, callers)
                    if key not in results:
                        results[key] = []
                        rows.append(key)
                    results[key].append(res)
                    m = kb.merge([res], args.budget_ms + 20)
                    print(f"  {kb.fmt(*key, m)}", file=sys.stderr, flush=True)
    finally:
        for sb in sandboxes.values():
            sb.stop()

    load_avg = os.getloadavg()[0]
    lo, hi = (min(loads), max(loads)) if loads else (load_avg, load_avg)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}: {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}) shared by opensips, the sandbox and "
        f"the load generator (1-minute load average {lo:.1f}-{hi:.1f} after the rows, "
        f"{load_avg:.1f} at the end). opensips 3.6.8, {args.children} UDP workers, -m "
        f"{args.shm_mb}; {args.window} INVITEs outstanding ({args.hang_window} while the service "
        f"hangs); libnol budget {args.budget_ms} ms; rest_client timeout {args.recipe_timeout} s; "
        f"slow service {args.delay_ms} ms; {args.rounds} round(s) of {args.seconds:g} s a row; "
        f"{'no retransmissions' if args.no_retransmit else 'UAC retransmits on timer A'}.\n"
    )
    print(
        f"| configuration | service | callers | INVITEs/s | p50 ms | p99 ms | max ms | replies "
        f"| > {args.budget_ms + 20} ms | retransmitted | lost | codes |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key in rows:
        print(kb.fmt(*key, kb.merge(results[key], args.budget_ms + 20)))
    for name, why in skipped.items():
        print(f"| {name} | | | not measured: {why} | | | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
