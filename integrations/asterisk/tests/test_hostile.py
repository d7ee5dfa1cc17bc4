"""Hostile labels in a real Asterisk 22: a stand-in service (hostile_server.js) signs answers
whose display label and receipt id carry an AGI command after a newline (`SET VARIABLE
NOL_ACTION block_candidate`, `SET VARIABLE INJECTED 1`), CR/LF, NUL, C0/C1 control characters,
quotes, backslashes, bidi overrides and Unicode line separators. libnol verifies them (they are
properly signed), so they reach the module, AGI and FastAGI as a real answer would. Whatever the
label says: no AGI command is injected (NOL_ACTION, NOL_RISK and every other variable are what
the answer's fields give, INJECTED stays unset), and no control character reaches a variable or
CALLERID(name)."""

import re

import pytest

# Contexts of tests/extensions.conf: the module with the opt-in (nol.conf callerid_name = yes),
# AGI and FastAGI with and without it.
PATHS = {
    "nol-module": True,
    "nol-func": True,
    "nol-agi": False,
    "nol-agi-name": True,
    "nol-fastagi": False,
    "nol-fastagi-name": True,
}
NUMBERS = ["14155551212", "14155550100", "14155550111", "14155550122", "14155550133"]

# What no variable may hold: C0, DEL, C1, Unicode line/paragraph separators, bidi
# embeddings/overrides/isolates and marks, the BOM.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@pytest.mark.parametrize("path", list(PATHS))
def test_hostile_labels_inject_nothing(hostile_asterisk, path):
    labels = {}
    for number in NUMBERS:
        f = hostile_asterisk.call(path, number)
        # The answer's own fields, untouched by what the label says.
        assert f["ACTION"] == "allow", (path, number, f)
        assert f["RISK"] == "10", (path, number, f)
        assert f["VERIFIED"] == "1" and f["FAIL_OPEN"] == "", (path, number, f)
        assert f["INJECTED"] == "", (path, number, f)
        assert f["SIP_CODE"] == "503" and f["SIP_CONTACT"] == "", (path, number, f)
        for k, v in f.items():
            assert not UNSAFE.search(v), (path, number, k, v)
        # the receipt: a token (letters, digits, _.:-+) or nothing
        assert re.fullmatch(r"[A-Za-z0-9_.:+-]*", f["RECEIPT"]), (path, number, f["RECEIPT"])
        assert "block_candidate" not in f["ACTION"]
        # The caller name: only on opt-in, then the label exactly; never an empty one.
        if PATHS[path] and f["LABEL"]:
            assert f["NAME"] == f["LABEL"], (path, number, f)
        else:
            assert f["NAME"] == "orig", (path, number, f)
        labels[number] = f["LABEL"]
    # the text survives, made safe (spaces for what was unsafe), the same on every path
    # (libnol caps a label at 64 characters)
    assert labels["14155551212"].startswith("Evil SET VARIABLE NOL_ACTION block_candidate SET"), labels
    assert all(len(v) <= 64 for v in labels.values()), labels
    assert labels["14155550133"] == ""
    test_hostile_labels_inject_nothing.seen.setdefault("labels", []).append((path, labels))
    assert len({tuple(sorted(v.items())) for _, v in test_hostile_labels_inject_nothing.seen["labels"]}) == 1, \
        test_hostile_labels_inject_nothing.seen["labels"]


test_hostile_labels_inject_nothing.seen = {}


def test_hostile_log_lines_are_whole(hostile_asterisk):
    """Every report line the calls above printed is one line ending in END=1: no CR, LF or
    other line break reached a variable (the raw bytes of the log, not a decoded view)."""
    raw = hostile_asterisk.log.read_bytes()
    # the Verbose() output itself, not the "Executing [s@report:1] Verbose(...)" trace of it
    lines = [l for l in raw.split(b"\n") if b"NOLTEST|" in l and b"Executing [" not in l]
    assert len(lines) >= len(PATHS) * len(NUMBERS), len(lines)
    for l in lines:
        assert l.endswith(b"|END=1"), l
        assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", l), l
