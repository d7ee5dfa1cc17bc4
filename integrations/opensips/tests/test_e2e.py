"""End-to-end: OpenSIPS 3.6.8 + nol.so + the sandbox, real SIP INVITEs over UDP.

Run by scripts/test-opensips.sh (which builds everything first; NOL_OPENSIPS_DIR names the build).
"""

from __future__ import annotations

import re
import time

import pytest

from osips import CountingProxy, HERE, HostileServer, OpenSIPS, Sandbox
from sip import RedisServer

SCREENING = "sip:screening@pbx.example"
BUDGET_MS = 400
# a single INVITE: the reply within budget + 100 ms (the bound); the slack covers
# OpenSIPS's own work and the scheduler of a shared 2-core machine, not the lookup
SLACK_MS = 100
# many INVITEs outstanding on few workers: every final reply within budget + 100 ms
ASYNC_SLACK_MS = 100


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox()
    yield sb
    sb.stop()


def start(sb_url: str, public_key: str, children: int = 4, **env: str) -> OpenSIPS:
    base = {"NOL_BASE_URL": sb_url, "NOL_PUBLIC_KEY_FILE": public_key,
            "NOL_BUDGET_MS": str(BUDGET_MS)}
    base.update(env)
    return OpenSIPS(env=base, children=children)


@pytest.fixture(scope="module")
def osips(sandbox):
    o = start(sandbox.url, sandbox.public_key, NOL_SCREENING_CONTACT=SCREENING)
    yield o
    o.stop()


def nol_headers(reply):
    return {n: v for n, v in reply.headers if n.lower().startswith("x-numbersonline-")}


def assert_route_advance(reply, action="allow_with_default_policy", code=503):
    reason = {503: "Service Unavailable", 404: "Not Found"}[code]
    assert (reply.code, reply.reason) == (code, reason), reply.raw
    assert reply.one("X-NumbersOnline-Action") == action
    assert reply.one("Contact") is None


def within(reply, ms):
    assert reply.latency_ms <= ms, f"{reply.latency_ms:.0f} ms > {ms} ms"


def latency_summary(replies) -> str:
    lat = sorted(r.latency_ms for r in replies)
    if not lat:
        return "no replies"
    return (f"{len(lat)} replies, p50 {lat[len(lat) // 2]:.0f} ms, "
            f"p99 {lat[min(len(lat) - 1, len(lat) * 99 // 100)]:.0f} ms, max {lat[-1]:.0f} ms")


def new_callers(count: int, first: int = 0):
    """Numbers in no directory entry and no fault range: a signed "no record" each."""
    return [f"+1415556{(first + i) % 10000:04d}" for i in range(count)]


# -- each directory entry ------------------------------------------------------------------

# number, code, action, risk, name header (None: none)
DIRECTORY = [
    ("+14155551212", 503, "allow", "8", '"Acme Support"'),
    ("+14155550100", 503, "allow", "5", '"Verified & online"'),
    ("+14155550111", 503, "label", "30", '"Café Zürich — Bäckerei"'),
    ("+14155550122", 302, "challenge_or_route", "72", None),
    ("+14155550133", 302, "block_candidate", "96", None),  # no block opt-in: screening, not 603
    ("+14155550177", 503, "allow_with_default_policy", None, None),  # no record
    ("+15555550100", 503, "allow_with_default_policy", None, None),  # result: invalid_number
]


@pytest.mark.parametrize("number,code,action,risk,name", DIRECTORY)
def test_directory_entry(osips, number, code, action, risk, name):
    reply = osips.client.invite(number)
    assert reply.code == code, reply.raw
    assert reply.one("X-NumbersOnline-Action") == action
    assert reply.one("X-NumbersOnline-Risk") == risk
    receipt = reply.one("X-NumbersOnline-Receipt")
    assert receipt is not None and re.fullmatch(r"nol_rec_[A-Za-z0-9_]+", receipt)
    assert reply.one("X-NumbersOnline-Name") == name
    if code == 302:
        assert reply.reason == "Moved Temporarily"
        assert reply.one("Contact") == f"<{SCREENING}>"
    else:
        assert reply.reason == "Service Unavailable"
        assert reply.one("Contact") is None


def test_caller_from_p_asserted_identity_wins_over_from(osips):
    reply = osips.client.invite("+14155551212", pai="<sip:+14155550122@carrier.example;user=phone>")
    assert reply.code == 302
    assert reply.one("X-NumbersOnline-Action") == "challenge_or_route"


def pai(number: str, verstat: str) -> str:
    return f"<sip:{number};verstat={verstat}@carrier.example;user=phone>"


def test_verstat_from_header_parameters(osips):
    passed = osips.client.invite("+14155551212", pai=pai("+14155551212", "TN-Validation-Passed"))
    failed = osips.client.invite("+14155551212", pai=pai("+14155551212", "TN-Validation-Failed"))
    assert passed.one("X-NumbersOnline-Risk") == "8"
    assert failed.one("X-NumbersOnline-Risk") == "48"  # +40, as the contract says
    assert failed.one("X-NumbersOnline-Action") == "label"
    param = osips.client.invite(
        "+14155551212",
        pai="<sip:+14155550122@carrier.example;user=phone>;verstat=TN-Validation-Failed")
    assert param.one("X-NumbersOnline-Risk") == "100"
    from_only = osips.client.invite(
        "+14155550100",
        from_uri="sip:+14155550100;verstat=TN-Validation-Failed@carrier.example;user=phone")
    assert from_only.one("X-NumbersOnline-Risk") == "45"


def test_block_only_with_opt_in(sandbox):
    o = start(sandbox.url, sandbox.public_key, NOL_BLOCK="1", NOL_SCREENING_CONTACT=SCREENING)
    try:
        block = o.client.invite("+14155550133")
        screen = o.client.invite("+14155550122")
        allow = o.client.invite("+14155551212")
    finally:
        o.stop()
    assert (block.code, block.reason) == (603, "Decline")
    assert block.one("X-NumbersOnline-Action") == "block_candidate"
    assert block.one("Contact") is None
    assert screen.code == 302 and allow.code == 503


def test_no_screening_contact_routes_on_and_404_and_risk_tag(sandbox):
    o = start(sandbox.url, sandbox.public_key, NOL_RISK_TAG="[SPAM?]", NOL_RISK_THRESHOLD="25",
              NOL_ROUTE_ADVANCE_CODE="404")
    try:
        risky = o.client.invite("+14155550122")
        tagged = o.client.invite("+14155550111")
        clean = o.client.invite("+14155551212")
        hung = o.client.invite("+14155550901")
    finally:
        o.stop()
    assert risky.code == 404 and risky.one("Contact") is None
    assert (tagged.code, tagged.reason) == (404, "Not Found")
    assert tagged.one("X-NumbersOnline-Name") == '"[SPAM?] Café Zürich — Bäckerei"'
    assert clean.one("X-NumbersOnline-Name") == '"Acme Support"'
    assert_route_advance(hung, code=404)


# -- fail open ------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["hang", "reset", "bad-signature"])
def test_service_failure_route_advances_within_budget(fault):
    sb = Sandbox(fault=fault)
    o = start(sb.url, sb.public_key, NOL_SCREENING_CONTACT=SCREENING, NOL_BLOCK="1")
    try:
        for number, *_ in DIRECTORY:
            reply = o.client.invite(number)
            assert_route_advance(reply)
            within(reply, BUDGET_MS + SLACK_MS)
            assert reply.one("X-NumbersOnline-Risk") is None
            assert reply.one("X-NumbersOnline-Name") is None
        log = o.read_log()
    finally:
        o.stop()
        sb.stop()
    assert "failed open" in log
    assert "nol_sandbox_standard_key" not in log


FAULT_NUMBERS = [f"+141555509{n:02d}" for n in range(1, 17)]


@pytest.fixture(scope="module")
def osips_faults(sandbox):
    o = start(sandbox.url, sandbox.public_key, NOL_SCREENING_CONTACT=SCREENING, NOL_BLOCK="1")
    yield o
    o.stop()


@pytest.mark.parametrize("number", FAULT_NUMBERS)
def test_every_sandbox_fault_route_advances_within_budget(osips_faults, number):
    reply = osips_faults.client.invite(number)
    assert_route_advance(reply)
    within(reply, BUDGET_MS + SLACK_MS)


def test_unreachable_service_route_advances(sandbox):
    o = start("http://127.0.0.1:9", sandbox.public_key)
    try:
        reply = o.client.invite("+14155551212")
    finally:
        o.stop()
    assert_route_advance(reply)
    within(reply, BUDGET_MS + SLACK_MS)


def test_withheld_and_garbage_callers_route_advance(osips):
    for from_uri in ("sip:anonymous@anonymous.invalid", "sip:restricted@carrier.example",
                     "sip:not-a-number@carrier.example"):
        assert_route_advance(osips.client.invite("x", from_uri=from_uri))


# -- never blocking a worker: many outstanding on few workers -------------------------------

@pytest.mark.parametrize("workers,outstanding,total", [(2, 32, 192), (4, 64, 320)])
def test_slow_service_many_outstanding_every_reply_within_budget_and_verified(
        workers, outstanding, total):
    """A service that answers correctly after 250 ms: a blocking worker would answer 4 a
    second; with async() every reply comes within the budget + 100 ms, every one verified."""
    sb = Sandbox(delay_ms=250)
    o = start(sb.url, sb.public_key, children=workers, NOL_SCREENING_CONTACT=SCREENING)
    try:
        t0 = time.monotonic()
        sent, replies = o.client.closed_loop(new_callers(total, first=workers * 1000),
                                             outstanding=outstanding)
        elapsed = time.monotonic() - t0
        stats = o.stats()
    finally:
        o.stop()
        sb.stop()
    summary = f"{latency_summary(replies.values())}, {len(replies) / elapsed:.0f} INVITEs/s"
    print(f"slow service, {workers} workers, {outstanding} outstanding: {summary}")
    assert len(sent) == total and set(replies) == set(sent), summary
    for reply in replies.values():
        assert reply.latency_ms <= BUDGET_MS + ASYNC_SLACK_MS, summary
        assert reply.code == 503, reply.raw
        assert reply.one("X-NumbersOnline-Action") == "allow_with_default_policy"
        receipt = reply.one("X-NumbersOnline-Receipt")
        assert receipt and re.fullmatch(r"nol_rec_[A-Za-z0-9_]+", receipt), reply.raw
    assert stats["async_lookups"] == total, stats
    assert stats["verified"] == total and stats["failed_open"] == 0, stats
    # far above what `workers` blocking workers could do (workers / 0.25 s)
    assert len(replies) / elapsed >= 10 * workers / 0.25 / 2, summary


def test_hanging_service_32_outstanding_on_2_workers_every_reply_within_budget():
    sb = Sandbox(fault="hang")
    o = start(sb.url, sb.public_key, children=2, NOL_SCREENING_CONTACT=SCREENING)
    total = 160
    try:
        sent, replies = o.client.closed_loop(new_callers(total, first=7000), outstanding=32)
        stats = o.stats()
    finally:
        o.stop()
        sb.stop()
    summary = latency_summary(replies.values())
    print(f"hanging service, 2 workers, 32 outstanding: {summary}")
    assert set(replies) == set(sent) and len(sent) == total, summary
    for reply in replies.values():
        assert_route_advance(reply)
        assert reply.latency_ms <= BUDGET_MS + ASYNC_SLACK_MS, summary
    assert stats["failed_open"] == total, stats


def test_repeated_caller_across_workers_and_nodes_is_one_request_with_redis():
    """OpenSIPS keeps one libnol client per SIP worker; with the shared tier every worker of
    two instances naming one Redis asks the service once per caller: 64 INVITEs from one new
    caller spread over 2 x 4 workers cost one request at the sandbox's door, and every reply
    carries the one signed answer. A bad redis_url stops OpenSIPS at start with libnol's
    message and without the password."""
    redis = RedisServer()
    sb = Sandbox(delay_ms=250)
    proxy = CountingProxy(sb.url)
    env = dict(NOL_SCREENING_CONTACT=SCREENING, NOL_REDIS_URL=redis.url)
    nodes = [start(proxy.url, sb.public_key, **env), start(proxy.url, sb.public_key, **env)]
    replies = []
    try:
        for _ in range(2):
            for node in nodes:
                replies += list(node.client.closed_loop(["+14155551212"] * 16,
                                                        outstanding=16)[1].values())
        stats = [node.stats() for node in nodes]
    finally:
        for node in nodes:
            node.stop()
        proxy.stop()
        sb.stop()
        redis.stop()
    summary = latency_summary(replies)
    assert len(replies) == 64, summary
    receipts = {r.one("X-NumbersOnline-Receipt") for r in replies}
    assert len(receipts) == 1 and None not in receipts, receipts
    for reply in replies:
        assert reply.code == 503 and reply.one("X-NumbersOnline-Action") == "allow", reply.raw
        assert reply.latency_ms <= BUDGET_MS + ASYNC_SLACK_MS, summary
    assert proxy.numbers() == ["+14155551212"], proxy.numbers()
    assert sum(s["failed_open"] for s in stats) == 0, stats


def test_retransmitted_invite_is_absorbed_by_its_transaction():
    """The same INVITE sent five times while its lookup waits on a slow service, once more
    after the 100 ms, once more after the final reply: one lookup, one decision."""
    sb = Sandbox(delay_ms=250)
    proxy = CountingProxy(sb.url)
    o = start(proxy.url, sb.public_key)
    try:
        data, cid = o.client.invite_bytes("+14155550100")
        t0 = time.monotonic()
        for _ in range(5):
            o.client.send(data)
        time.sleep(0.1)
        o.client.send(data)
        got = o.client.recv_final({cid}, timeout=3.0)
        o.client.send(data)  # after the final reply: tm re-sends it
        again = o.client.recv_final({cid}, timeout=1.0)
        # the ACK stops tm's retransmission of the final reply: nothing more comes
        late = o.client.recv_final({cid}, timeout=1.5)
        stats = o.stats()
        # and the transaction ends after tm's wait timer (5 s): none left in use
        deadline = time.monotonic() + 10
        while True:
            inuse = int(o.mi("get_statistics", [["inuse_transactions"]])
                        .get("tm:inuse_transactions", 0))
            if inuse == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        o.stop()
        proxy.stop()
        sb.stop()
    assert cid in got, "no final reply"
    reply = got[cid]
    assert (reply.latency_ms - t0) * 1000 <= BUDGET_MS + ASYNC_SLACK_MS
    assert reply.code == 503 and reply.one("X-NumbersOnline-Action") == "allow"
    assert cid in again and again[cid].one("X-NumbersOnline-Receipt") == reply.one(
        "X-NumbersOnline-Receipt")
    assert proxy.numbers() == ["+14155550100"], proxy.numbers()
    assert stats["lookups"] == 1, stats
    assert late == {}, late
    assert inuse == 0, inuse


# -- hostile input --------------------------------------------------------------------------

def test_forged_inbound_headers_do_not_reach_the_reply(osips):
    reply = osips.client.invite("+14155550133", extra=[
        "X-NumbersOnline-Action: allow",
        "X-NumbersOnline-Risk: 0",
        "x-numbersonline-receipt: nol_rec_forged",
        "X-NumbersOnline-Name: \"Your Bank\"",
    ])
    assert reply.code == 302
    h = nol_headers(reply)
    assert h["X-NumbersOnline-Action"] == "block_candidate"
    assert h["X-NumbersOnline-Risk"] == "96"
    assert h["X-NumbersOnline-Receipt"] != "nol_rec_forged"
    assert "X-NumbersOnline-Name" not in h
    assert len(reply.all("X-NumbersOnline-Action")) == 1


def test_hostile_from_display_name_is_not_reflected(osips):
    reply = osips.client.invite("+14155550177", from_display='Evil\\" X-NumbersOnline-Action: allow')
    assert_route_advance(reply)
    assert reply.one("X-NumbersOnline-Name") is None


@pytest.fixture(scope="module")
def hostile():
    server = HostileServer()
    yield server
    server.stop()


@pytest.mark.parametrize("number", ["+14155551212", "+14155550100", "+14155550111"])
def test_hostile_display_label_cannot_inject_a_header(hostile, number):
    o = start(hostile.url, hostile.public_key)
    try:
        reply = o.client.invite(number)
    finally:
        o.stop()
    names = [n.lower() for n, _ in reply.headers]
    allowed = {"via", "from", "to", "call-id", "cseq", "server", "content-length",
               "x-numbersonline-action", "x-numbersonline-risk", "x-numbersonline-receipt",
               "x-numbersonline-name"}
    assert set(names) <= allowed, names
    for n in ("x-numbersonline-action", "x-numbersonline-risk", "x-numbersonline-receipt",
              "x-numbersonline-name"):
        assert names.count(n) <= 1, names
    assert reply.code == 503
    assert reply.one("X-NumbersOnline-Action") in ("allow", "allow_with_default_policy")
    name = reply.one("X-NumbersOnline-Name")
    if name is not None:
        name.encode("utf-8")
        assert re.fullmatch(r'"(?:[^"\\\x00-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"', name), name
    receipt = reply.one("X-NumbersOnline-Receipt")
    if receipt is not None:
        assert not re.search(r"[\x00-\x1f\x7f]", receipt)


@pytest.mark.parametrize("mangle", [
    lambda d: d.replace(b"<sip:+14155551212@", b"<sip:+1415\xff\xfe5551212@", 1),
    lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nP-Asserted-Identity: \r\n", 1),
    lambda d: d.replace(b"+14155551212@", b"+1" + b"4" * 3000 + b"@", 1),
    lambda d: d.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nIdentity: ...;;;\x01\r\n", 1),
])
def test_malformed_callers_still_get_an_answer(osips, mangle):
    data, cid = osips.client.invite_bytes("+14155551212")
    osips.client.send(mangle(data))
    got = osips.client.recv_final({cid}, timeout=3.0)
    assert cid in got, "no reply"
    assert got[cid].code in (400, 302, 503), got[cid].raw
    assert osips.client.invite("+14155550122").code == 302


# -- the synchronous form, statistics, start-up checks ---------------------------------------

def test_synchronous_nol_lookup(sandbox):
    o = OpenSIPS(cfg=HERE / "sync.cfg", children=1, env={
        "NOL_BASE_URL": sandbox.url, "NOL_PUBLIC_KEY_FILE": sandbox.public_key,
        "NOL_SCREENING_CONTACT": SCREENING, "NOL_BUDGET_MS": str(BUDGET_MS)})
    try:
        first = o.client.invite("+14155551212", extra=["X-NumbersOnline-Action: block_candidate"])
        again = o.client.invite("+14155551212")
        screen = o.client.invite("+14155550122")
        hung = o.client.invite("+14155550901")
        stats = o.stats()
    finally:
        o.stop()
    assert first.code == 503 and first.one("X-NumbersOnline-Action") == "allow"
    assert first.one("X-NumbersOnline-Name") == '"Acme Support"'
    assert first.one("X-Sync-Outcome") == "verified verified=1"
    assert again.one("X-Sync-Outcome") == "cached verified=1"
    assert screen.code == 302 and screen.one("Contact") == f"<{SCREENING}>"
    assert_route_advance(hung)
    assert hung.one("X-Sync-Outcome") == "fail_open verified=0"
    within(hung, BUDGET_MS + SLACK_MS)
    assert stats["sync_lookups"] == 4 and stats["async_lookups"] == 0, stats


def test_statistics_over_mi(sandbox):
    o = start(sandbox.url, sandbox.public_key, children=1, NOL_SCREENING_CONTACT=SCREENING)
    try:
        for number in ("+14155551212", "+14155551212", "+14155550122", "+14155550901"):
            o.client.invite(number)
        stats = o.stats()
    finally:
        o.stop()
    assert stats["lookups"] == 4, stats
    assert stats["failed_open"] == 1, stats
    assert stats["redirect_302"] == 1, stats
    assert stats["route_advance"] == 3, stats
    assert stats["decline_603"] == 0, stats
    # one worker: the second +14155551212 is its cache's
    assert stats["verified"] == 2 and stats["cached"] == 1, stats
    assert stats["async_lookups"] == 4, stats


@pytest.mark.parametrize("env, message", [
    ({"NOL_BUDGET_MS": "0"}, "nol: modparam budget_ms: budget_ms 0 is not within 1..=60000"),
    ({"NOL_ROUTE_ADVANCE_CODE": "480"}, "nol: modparam route_advance_code:"),
    ({"NOL_SCREENING_CONTACT": "http://x"}, "nol: modparam screening_contact:"),
    ({"NOL_BASE_URL": "ftp://127.0.0.1:21"}, "nol: modparam base_url:"),
    ({"NOL_PUBLIC_KEY_FILE": "/nonexistent.pem"}, "nol: modparam public_key_file:"),
    ({"NUMBERS_ONLINE_API_KEY": ""}, "nol: cannot make the numbers.online client"),
    ({"NOL_REDIS_URL": "http://:s3cret-pw@127.0.0.1:6379"}, "nol: modparam redis_url:"),
])
def test_bad_settings_stop_opensips_at_start_with_libnols_message(sandbox, env, message):
    env = {"NOL_BASE_URL": sandbox.url, "NOL_PUBLIC_KEY_FILE": sandbox.public_key, **env}
    with pytest.raises(AssertionError) as failed:
        o = OpenSIPS(env=env)
        o.stop()
    assert "opensips exited at start" in str(failed.value)
    assert message in str(failed.value), str(failed.value)[-2000:]
    assert "s3cret-pw" not in str(failed.value)  # a Redis password is never logged
