"""The operators' example dialplans, as shipped (integrations/asterisk/extensions.conf and the
FreePBX extensions_custom.conf), loaded into the real Asterisk with res_nol.so: every line
parses, and calls through their inbound contexts get the module's verdict, route on it and
(FreePBX) carry it in the outbound leg's SIPHEADERS.

This Asterisk has no SIP channel driver (Debian 12 has no pjproject, and the bundled one is a
download), so PJSIP_HEADER() reads nothing and Dial(PJSIP/...) fails: the calls are Local
channels entering each example through a wrapper context that sets the caller, and the
FreePBX contexts the example hands over to (from-pstn, app-blackhole) are stand-ins that
print what they were given."""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from conftest import Asterisk

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "extensions.conf"
FREEPBX = HERE.parent / "extensions_custom.conf"

WRAPPER = r"""
; --- the test's own contexts (not part of the examples) ---
[ex-from-trunk]
exten => _X.,1,Set(CALLERID(num)=+${EXTEN})
 same => n,Goto(from-trunk,${EXTEN},1)

[ex-freepbx]
exten => _X.,1,Set(CALLERID(num)=+${EXTEN})
 same => n,Goto(from-trunk-nol,${EXTEN},1)

; FreePBX's own contexts, stood in for: print what the example handed over
[from-pstn]
exten => _X.,1,Verbose(0,EXAMPLE|pstn|${CALLERID(num)}|${HASH(SIPHEADERS,X-NumbersOnline-Action)}|${HASH(SIPHEADERS,X-NumbersOnline-Risk)}|${HASH(SIPHEADERS,X-NumbersOnline-Receipt)}|END)
 same => n,Hangup()

[app-blackhole]
exten => ring,1,Verbose(0,EXAMPLE|blackhole|${CALLERID(num)}|${HASH(SIPHEADERS,X-NumbersOnline-Action)}|${HASH(SIPHEADERS,X-NumbersOnline-Risk)}|${HASH(SIPHEADERS,X-NumbersOnline-Receipt)}|END)
 same => n,Hangup()
"""


def contexts(text):
    """The priorities each context of a dialplan file defines (exten/same lines)."""
    out, current = {}, None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        m = re.match(r"^\[([\w-]+)\]", line)
        if m:
            current = m.group(1)
            out.setdefault(current, 0)
        elif current and re.match(r"^(exten|same)\s*=>", line):
            out[current] += 1
    return {k: v for k, v in out.items() if k != "globals"}


@pytest.fixture(scope="module")
def examples(sandbox, fastagi, tmp_path_factory):
    prefix = os.environ.get("NOL_ASTERISK_PREFIX")
    module = os.environ.get("NOL_ASTERISK_MODULE")
    if not prefix or not module:
        pytest.skip("run through scripts/test-asterisk.sh (NOL_ASTERISK_PREFIX, NOL_ASTERISK_MODULE)")
    dialplan = tmp_path_factory.mktemp("examples") / "extensions.conf"
    dialplan.write_text(EXAMPLE.read_text() + "\n" + FREEPBX.read_text() + "\n" + WRAPPER)
    a = Asterisk(prefix, module, sandbox, fastagi, dialplan=dialplan)
    yield a
    a.stop()
    shutil.rmtree(a.dir, ignore_errors=True)


def wait_for(asterisk, pattern, timeout=10):
    end = time.time() + timeout
    rx = re.compile(pattern)
    while time.time() < end:
        for line in asterisk.log.read_text(errors="replace").splitlines():
            m = rx.search(line)
            if m:
                return m
        time.sleep(0.05)
    raise AssertionError(f"no log line matching {pattern!r}")


def test_every_line_of_both_examples_parses(examples):
    for path in (EXAMPLE, FREEPBX):
        for context, priorities in contexts(path.read_text()).items():
            shown = examples.cli(f"dialplan show {context}")
            assert f"Context '{context}'" in shown, (path.name, context, shown)
            assert shown.count("[extensions.conf:") == priorities, (path.name, context, shown)


def test_the_example_routes_on_the_modules_verdict(examples):
    # a known caller: allowed, with its label; a risky one: the challenge branch
    for number, action, label in (("14155551212", "allow", "Acme Support"),
                                  ("14155550122", "challenge_or_route", "")):
        examples.cli(f"channel originate Local/{number}@ex-from-trunk application Wait 1")
        m = wait_for(examples,
                     rf"numbers\.online: {action} risk=(\d+) label=(.*) verified=1 fail_open=$")
        assert m.group(2) == label
    # the route: challenge_or_route answers and goes to the challenge, an allow rings (each
    # line is logged a moment after the verdict's: waited for, not read once)
    wait_for(examples, r"Executing \[14155550122@from-trunk:\d+\] Answer")
    wait_for(examples, r"Executing \[14155551212@from-trunk:\d+\] Dial\(.*PJSIP/100")
    log = examples.log.read_text(errors="replace")
    assert not re.search(r"Executing \[14155551212@from-trunk:\d+\] Answer", log)


def test_the_freepbx_example_hands_fresh_headers_to_the_outbound_leg(examples):
    examples.cli("channel originate Local/14155550100@ex-freepbx application Wait 1")
    m = wait_for(examples, r"EXAMPLE\|pstn\|\+14155550100\|([^|]*)\|([^|]*)\|([^|]*)\|END")
    assert m.group(1) == "allow" and m.group(2) == "5", m.groups()
    assert m.group(3).startswith("nol_rec_"), m.groups()
    examples.cli("channel originate Local/14155550133@ex-freepbx application Wait 1")
    m = wait_for(examples, r"EXAMPLE\|pstn\|\+14155550133\|([^|]*)\|([^|]*)\|([^|]*)\|END")
    assert m.group(1) == "block_candidate" and m.group(2) == "96", m.groups()
    examples.cli("channel originate Local/14155550122@ex-freepbx application Wait 1")
    m = wait_for(examples, r"EXAMPLE\|blackhole\|\+14155550122\|([^|]*)\|([^|]*)\|([^|]*)\|END")
    assert m.group(1) == "challenge_or_route" and m.group(2) == "72", m.groups()
