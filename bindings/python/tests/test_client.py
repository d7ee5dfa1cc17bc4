"""nol.Client against the sandbox over real HTTP: the directory, every fault, configuration
errors, threads sharing one client, and a thousand concurrent lookups against a hanging
service with the circuit breaker off."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import nol
from conftest import BUDGET_MS, FAULTS, FREE_KEY, MARGIN_S, SANDBOX_KEY, fault_number

BUDGET_S = BUDGET_MS / 1000


@pytest.fixture(scope="module")
def client(sandbox) -> nol.Client:
    return sandbox.client()


@pytest.mark.parametrize(
    ("number", "action", "name", "identity", "risk"),
    [
        ("+14155551212", "allow", "Acme Support", "verified_business", 8),
        ("+14155550100", "allow", "Verified & online", "verified_individual", 5),
        ("+14155550111", "label", "Café Zürich — Bäckerei", "listed_business", 30),
        ("+14155550122", "challenge_or_route", None, None, 72),
        ("+14155550133", "block_candidate", None, None, 96),
        ("+14155559876", "allow_with_default_policy", None, None, None),
    ],
)
def test_directory(client, number, action, name, identity, risk) -> None:
    d = client.lookup(number)
    assert isinstance(d, nol.Decision)
    assert (d.action, d.caller_name, d.identity_type, d.risk_score) == (
        action,
        name,
        identity,
        risk,
    )
    assert d.verified and d.fail_open is None and d.http_status is None
    # Signed is not the same as a verified caller: a listed business is only a name.
    assert d.identity_verified == (identity in ("verified_business", "verified_individual"))
    assert d.number == number
    assert d.receipt_id and d.receipt_id.startswith("nol_rec_")
    assert d.result == ("no_record" if risk is None else "found")
    # Without the operator's opt-in, nothing is blocked: 603 never appears.
    assert d.sip_code != 603
    assert d.agi_variables["NOL_ACTION"] == action
    assert d.agi_variables["NOL_RECEIPT"] == d.receipt_id
    assert d.headers["X-NumbersOnline-Action"] == action
    assert ("X-NumbersOnline-Risk" in d.headers) == (risk is not None)
    assert d.display_line.startswith("Caller: ")
    assert d.to_dict()["action"] == action


def test_display_line_of_the_seed(client) -> None:
    d = client.lookup("+14155551212", verstat="TN-Validation-Passed", attestation="A")
    assert d.display_line == (
        "Caller: Acme Support ✓   STIR/SHAKEN: A, verified   "
        "numbers.online: verified_business, risk=low"
    )
    assert d.stir == nol.parse_verstat("TN-Validation-Passed-A")


def test_failed_verstat_adds_risk_and_is_cached_apart(sandbox) -> None:
    c = sandbox.client()
    passed = c.lookup("+14155551212", verstat="TN-Validation-Passed")
    failed = c.lookup("tel:+1-415-555-1212", verstat="TN-Validation-Failed")
    assert (passed.risk_score, failed.risk_score) == (8, 48)
    assert not passed.from_cache and not failed.from_cache
    again = c.lookup("+14155551212", verstat="TN-Validation-Failed")
    assert again.from_cache and again.verified and again.risk_score == 48
    assert again.cache_age is not None and again.cache_age >= 0
    assert passed.cache_age is None


def test_cache_hit_and_stats(sandbox) -> None:
    c = sandbox.client()
    first = c.lookup("+14155550100")
    second = c.lookup("+14155550100")
    assert not first.from_cache and second.from_cache
    assert second.caller_name == first.caller_name
    s = c.stats()
    assert (s.lookups, s.cache_hits, s.verified) == (2, 1, 1)
    assert s.http_status == {200: 1}
    assert s.fail_open == {}
    assert s.workers == 32 and not s.circuit_open
    assert s.shared_cache["enabled"] is False and s.shared_cache["hits"] == 0  # no redis_url
    assert 0 <= s.latency_p50_ms <= s.latency_p99_ms <= s.latency_max_ms


def test_local_contact_wins(client) -> None:
    d = client.lookup("+14155550111", local_contact="Mum")
    assert d.caller_name == "Mum"


def test_policy_opt_ins(sandbox) -> None:
    c = sandbox.client(policy=nol.Policy(risk_tag="Spam?", risk_threshold=50, block=True))
    blocked = c.lookup("+14155550133")
    assert (blocked.sip_code, blocked.action) == (603, "block_candidate")
    screened = sandbox.client(policy=nol.Policy(screening_contact="sip:screen@pbx.example"))
    d = screened.lookup("+14155550122")
    assert (d.sip_code, d.sip_contact) == (302, "sip:screen@pbx.example")
    assert c.policy.block and c.policy.risk_tag == "Spam?"


EXPECTED_REASONS = {
    "hang": ("timeout", None),
    "drip": ("timeout", None),
    "slow-body": ("timeout", None),
    "reset": ("connect", None),
    "close": ("connect", None),
    "500": ("http_status", 500),
    "503": ("http_status", 503),
    "429": ("rate_limited", None),
    "401": ("http_status", 401),
    "non-json": ("unparseable", None),
    "truncated": ("connect", None),
    "huge": ("body_too_large", None),
    "wrong-types": ("unusable", None),
    "bad-signature": ("bad_signature", None),
    "no-signature": ("unsigned", None),
    "redirect": ("http_status", 302),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_fails_open_within_budget(sandbox, fault) -> None:
    # A fresh client each time: a 429 holds later requests back, by design.
    c = sandbox.client(circuit_breaker=False)
    start = time.monotonic()
    d = c.lookup(fault_number(fault))
    elapsed = time.monotonic() - start
    assert (d.fail_open, d.http_status) == EXPECTED_REASONS[fault]
    assert d.action == "allow_with_default_policy"
    assert d.caller_name is None and not d.verified and not d.from_cache
    assert d.sip_code != 603
    assert d.agi_variables["NOL_ACTION"] == "allow_with_default_policy"
    assert "unavailable" in d.display_line
    assert elapsed < BUDGET_S + MARGIN_S, f"{fault}: {elapsed:.3f}s"


def test_anonymous_and_invalid_callers_fail_open_without_a_request(sandbox) -> None:
    c = sandbox.client()
    assert c.lookup("anonymous").fail_open == "anonymous"
    assert c.lookup("").fail_open == "anonymous"
    assert c.lookup("not a number").fail_open == "invalid_number"
    assert c.stats().http_status == {}


def test_unreachable_service_fails_open(sandbox) -> None:
    # A port nobody listens on (the sandbox's own port + a far offset is not guaranteed free, so
    # port 9 on loopback: discard, refused on this machine).
    c = nol.Client(SANDBOX_KEY, "http://127.0.0.1:9", sandbox.public_key_pem, budget_ms=BUDGET_MS)
    start = time.monotonic()
    d = c.lookup("+14155551212")
    assert d.fail_open in ("connect", "timeout")
    assert time.monotonic() - start < BUDGET_S + MARGIN_S


def test_circuit_breaker_opens_and_can_be_disabled(sandbox) -> None:
    on = sandbox.client()
    reasons = [on.lookup(fault_number("503")).fail_open for _ in range(8)]
    assert reasons[0] == "http_status" and "circuit_open" in reasons
    assert on.stats().circuit_open
    off = sandbox.client(circuit_breaker=False)
    assert {off.lookup(fault_number("503")).fail_open for _ in range(8)} == {"http_status"}


def test_free_tier_rate_limit_fails_open(sandbox) -> None:
    c = nol.Client(
        FREE_KEY,
        sandbox.url,
        sandbox.public_key_pem,
        budget_ms=BUDGET_MS,
        cache_size=0,
        rate_limit_per_minute=60,
    )
    reasons = [c.lookup("+14155551212").fail_open for _ in range(62)]
    assert reasons[:60] == [None] * 60
    assert reasons[60:] == ["rate_limited", "rate_limited"]


def test_wrong_api_key_fails_open_and_is_never_shown(sandbox) -> None:
    secret = "sk_live_do_not_print_me"
    c = nol.Client(secret, sandbox.url, sandbox.public_key_pem, budget_ms=BUDGET_MS)
    d = c.lookup("+14155551212")
    assert (d.fail_open, d.http_status) == ("http_status", 401)
    for text in (repr(c), repr(d), repr(c.stats()), d.display_line, str(d.to_dict())):
        assert secret not in text
    with pytest.raises(nol.ConfigError) as info:
        nol.Client("sk live with spaces", sandbox.url, sandbox.public_key_pem)
    assert "sk live" not in str(info.value)


def test_configuration_errors(sandbox, monkeypatch) -> None:
    for var in ("NUMBERS_ONLINE_API_KEY", "NOL_BASE_URL", "NOL_PUBLIC_KEY"):
        monkeypatch.delenv(var, raising=False)
    pem = sandbox.public_key_pem
    with pytest.raises(nol.ConfigError, match="API key"):
        nol.Client(None, sandbox.url, pem)
    with pytest.raises(nol.ConfigError, match="public key"):
        nol.Client(SANDBOX_KEY, sandbox.url)
    with pytest.raises(nol.InvalidPublicKey):
        nol.Client(SANDBOX_KEY, sandbox.url, "not a pem")
    with pytest.raises(nol.ConfigError, match="plain http"):
        nol.Client(SANDBOX_KEY, "http://numbers.example", pem)
    with pytest.raises(nol.ConfigError):
        nol.Client(SANDBOX_KEY, "ftp://x", pem)
    for bad in ({"budget_ms": 0}, {"budget_ms": -1}, {"max_in_flight": 0}, {"cache_size": -1}):
        with pytest.raises(nol.ConfigError):
            nol.Client(SANDBOX_KEY, sandbox.url, pem, **bad)
    with pytest.raises(nol.ConfigError):
        nol.Client(SANDBOX_KEY, sandbox.url, pem, default_country="XX")
    # Wrong types and out-of-range numbers are nol's errors too (ArgumentTypeError is also a
    # TypeError), never a bare TypeError or OverflowError.
    wrong_types = [
        {"budget_ms": "fast"},
        {"budget_ms": 1.5},
        {"circuit_breaker": 1},
        {"policy": "strict"},
        {"default_country": 1},
        {"rate_limit_per_minute": "60"},
    ]
    for bad in wrong_types:
        with pytest.raises(nol.ArgumentTypeError):
            nol.Client(SANDBOX_KEY, sandbox.url, pem, **bad)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError) as info:
        nol.Client(12345, sandbox.url, pem)  # type: ignore[arg-type]
    assert "12345" not in str(info.value)  # the key's type, never its value
    for bad in ({"budget_ms": 2**70}, {"rate_limit_per_minute": -1}):
        with pytest.raises(nol.InvalidArgument):
            nol.Client(SANDBOX_KEY, sandbox.url, pem, **bad)
    c = nol.Client(SANDBOX_KEY, sandbox.url, pem)
    with pytest.raises(nol.InvalidArgument):
        c.lookup("+14155551212", context="fax")
    with pytest.raises(nol.ArgumentTypeError):
        c.lookup(4155551212)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        c.lookup("+14155551212", verstat=1)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        c.precall("+14155551212", None)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        c.enroll(b"+14155551212")  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        c.lookup_callback("+14155551212", "not callable")  # type: ignore[arg-type]


def test_configuration_from_the_environment(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("NUMBERS_ONLINE_API_KEY", SANDBOX_KEY)
    monkeypatch.setenv("NOL_BASE_URL", sandbox.url)
    monkeypatch.setenv("NOL_PUBLIC_KEY", str(sandbox.public_key_path))
    c = nol.Client(budget_ms=BUDGET_MS)
    assert c.base_url == sandbox.url
    assert c.lookup("+14155551212").caller_name == "Acme Support"


def test_national_numbers_with_default_country(sandbox) -> None:
    c = sandbox.client(default_country="US")
    assert c.lookup("(415) 555-1212").caller_name == "Acme Support"


def test_precall_and_enroll(sandbox) -> None:
    c = sandbox.client()
    p = c.precall("+14155551212", "+14155550199")
    assert (p.dnc, p.fail_open) == ("SUPPRESS", None)
    assert p.receipt_id and p.receipt_id.startswith("nol_rec_")
    assert isinstance(p.compliance_signal, dict)
    assert c.precall("+14155551212", "+14155550100").dnc == "NO_MATCH"
    bad = c.precall("+14155551212", "nope")
    assert (bad.dnc, bad.fail_open) == ("UNKNOWN", "invalid_number")
    e = c.enroll("+14155551212")
    assert (e.enrolled, e.number, e.fail_open) == (True, "+14155551212", None)
    assert c.enroll("nope").fail_open == "invalid_number"


def test_precall_fails_open_when_the_service_is_down() -> None:
    from conftest import start_sandbox, stop

    sb = start_sandbox("503")
    try:
        p = sb.client().precall("+14155551212", "+14155550100")
        assert (p.dnc, p.fail_open) == ("UNKNOWN", "http_status")
        assert not sb.client().enroll("+14155551212").enrolled
    finally:
        stop(sb)


def test_threads_share_one_client(sandbox) -> None:
    c = sandbox.client()
    numbers = ["+14155551212", "+14155550100", "+14155550111", "+14155550122", "+14155559876"]
    errors: list[BaseException] = []
    results: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            for j in range(40):
                n = numbers[(i + j) % len(numbers)]
                d = c.lookup(n)
                with lock:
                    results.append((n, d.caller_name))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 16 * 40
    expected = {
        "+14155551212": "Acme Support",
        "+14155550100": "Verified & online",
        "+14155550111": "Café Zürich — Bäckerei",
        "+14155550122": None,
        "+14155559876": None,
    }
    assert all(name == expected[n] for n, name in results)
    s = c.stats()
    assert s.lookups == 640
    # Five numbers: a handful of requests, every other lookup from the cache or a shared flight.
    assert s.http_status.get(200, 0) <= 16 * len(numbers)
    assert s.cache_hits + s.shared_flights + s.http_status[200] == 640


def test_the_interpreter_is_released_while_waiting(hanging_sandbox) -> None:
    c = hanging_sandbox.client()
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    d = c.lookup("+14155551212")
    stop.set()
    t.join()
    assert d.fail_open == "timeout"
    # A thread holding the GIL for the whole 300 ms would have let the counter run ~0 times.
    assert ticks > 20


def test_a_thousand_concurrent_lookups_against_a_hanging_service(hanging_sandbox) -> None:
    """Every lookup settles within the budget counted from its own call, queueing included:
    not thanks to the circuit breaker (off), but because a lookup never waits for a worker."""
    c = hanging_sandbox.client(circuit_breaker=False)
    go = threading.Barrier(1000, timeout=30)

    def one(i: int) -> tuple[str | None, float]:
        number = f"+1415557{i:04d}"
        go.wait()
        start = time.monotonic()
        d = c.lookup(number)
        return d.fail_open, time.monotonic() - start

    with ThreadPoolExecutor(max_workers=1000) as pool:
        results = list(pool.map(one, range(1000)))
    assert len(results) == 1000
    reasons = {r for r, _ in results}
    assert reasons <= {"timeout", "busy"} and "timeout" in reasons
    worst = max(e for _, e in results)
    assert worst < BUDGET_S + MARGIN_S, f"slowest lookup took {worst:.3f}s"
    s = c.stats()
    assert s.lookups == 1000 and not s.circuit_open
    assert s.fail_open.get("timeout", 0) + s.fail_open.get("busy", 0) == 1000


# Python 3.12+ warns about any fork of a threaded process; forking one is what this tests.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_made_before_fork_works_in_the_child(sandbox) -> None:
    """gunicorn --preload and multiprocessing make a client in the parent and use it in
    forked children: the child gets its own threads, connections, cache and counters."""
    c = sandbox.client(budget_ms=1500)
    assert c.lookup("+14155551212").verified  # threads started, a connection kept alive
    # A lookup that is inside the client (a worker, a flight, locks) at the moment of the fork.
    busy = threading.Thread(target=c.lookup, args=(fault_number("hang"),))
    busy.start()
    time.sleep(0.1)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            start = time.monotonic()
            d = c.lookup("+14155551212")
            hang = c.lookup(fault_number("hang"))
            report = {
                "verified": d.verified,
                "from_cache": d.from_cache,
                "name": d.caller_name,
                "hang": hang.fail_open,
                "took": time.monotonic() - start,
                "lookups": c.stats().lookups,
            }
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read() or b"{}")
    assert os.WIFEXITED(status)
    took = report.pop("took", None)
    assert report == {
        "verified": True,
        "from_cache": False,  # the parent's cache is not the child's
        "name": "Acme Support",
        "hang": "timeout",
        "lookups": 2,
    }
    assert took is not None and took < 1.5 + 2 * MARGIN_S
    busy.join()
    # The parent is unaffected: its cache and counters are its own.
    assert c.lookup("+14155551212").from_cache
    assert c.stats().lookups == 3


# Python 3.12+ warns about any fork of a threaded process; forking one is what this tests.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_made_by_c_code_is_seen(sandbox) -> None:
    """A fork Python never hears of (C code calling libc's fork; os.register_at_fork handlers
    do not run) still gives the child its own client: the extension registers a
    pthread_atfork child handler with nol-core."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.fork.restype = ctypes.c_int
    c = sandbox.client(budget_ms=1500)
    assert c.lookup("+14155551212").verified  # threads started, a connection kept alive
    assert c.stats().lookups == 1
    read_end, write_end = os.pipe()
    pid = libc.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            before = c.stats().lookups
            d = c.lookup("+14155551212")
            report = {
                "before": before,
                "verified": d.verified,
                "from_cache": d.from_cache,
                "name": d.caller_name,
                "lookups": c.stats().lookups,
            }
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    assert pid > 0, ctypes.get_errno()
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        report = json.loads(pipe.read() or b"{}")
    assert os.WIFEXITED(status)
    assert report == {
        "before": 0,  # the child's own client: counters from zero
        "verified": True,
        "from_cache": False,  # the parent's cache is not the child's
        "name": "Acme Support",
        "lookups": 1,
    }
    assert c.lookup("+14155551212").from_cache
    assert c.stats().lookups == 2


RETELL_BODY = {
    "event": "call_inbound",
    "call_inbound": {
        "from_number": "+14155551212",
        "to_number": "+12125550100",
        "agent_id": "agent_1",
    },
}


def test_retell_inbound(sandbox, hanging_sandbox) -> None:
    c = sandbox.client(budget_ms=2000)
    for body in (RETELL_BODY, json.dumps(RETELL_BODY), json.dumps(RETELL_BODY).encode()):
        answer = c.retell_inbound(body)
        inbound = answer["call_inbound"]
        v = inbound["dynamic_variables"]
        assert v["caller_name"] == "Acme Support" and v["caller_verified"] == "true"
        assert v["caller_action"] == "allow" and v["receipt_id"].startswith("nol_rec_")
        assert all(isinstance(x, str) for x in v.values())
        assert inbound["metadata"]["provider"] == "numbers.online"
        assert "override_agent_id" not in inbound
    answer = c.retell_inbound(
        RETELL_BODY,
        override_agent_id="agent_vip",
        override_agent_version=3,
        metadata={"tenant": "t1", "provider": "spoofed"},
    )
    inbound = answer["call_inbound"]
    assert (inbound["override_agent_id"], inbound["override_agent_version"]) == ("agent_vip", 3)
    assert inbound["metadata"]["tenant"] == "t1"
    assert inbound["metadata"]["provider"] == "numbers.online"  # libnol's keys win
    # A bad body never raises: the fail-open variables, nothing said about the caller.
    for bad in (b"not json", "[]", {}, 42, None, {"call_inbound": "x"}):
        v = c.retell_inbound(bad)["call_inbound"]["dynamic_variables"]
        assert v["caller_name"] == "" and v["caller_verified"] == "false"
        assert v["caller_action"] == "allow_with_default_policy"
    with pytest.raises(nol.ArgumentTypeError):
        c.retell_inbound(RETELL_BODY, metadata="x")  # type: ignore[arg-type]
    with pytest.raises(nol.InvalidSetting):
        c.retell_inbound(RETELL_BODY, budget_ms=0)
    # Within the budget given for the call, against a service that never answers.
    hung = hanging_sandbox.client(budget_ms=5000)
    start = time.monotonic()
    answer = hung.retell_inbound(RETELL_BODY, budget_ms=BUDGET_MS)
    assert time.monotonic() - start < BUDGET_S + MARGIN_S
    assert answer["call_inbound"]["metadata"]["fail_open"] == "timeout"


def test_vapi_tool_result(sandbox, hanging_sandbox) -> None:
    c = sandbox.client(budget_ms=2000, default_country="US")

    def result(tool_call, client=c, **kw):
        answer = client.vapi_tool_result(tool_call, **kw)
        (only,) = answer["results"]
        return only["toolCallId"], json.loads(only["result"])

    call_id, r = result({"id": "t1", "function": {"arguments": {"number": "(415) 555-1212"}}})
    assert call_id == "t1"
    assert (r["valid"], r["caller_name"], r["verified"]) == (True, "Acme Support", True)
    _, r = result({"id": "t2", "function": {"arguments": '{"phone_number": "+14155550111"}'}})
    assert r["caller_name"] == "Café Zürich — Bäckerei" and not r["verified"]
    call_id, r = result({"id": "t3", "function": {"arguments": {"number": "banana"}}})
    assert call_id == "t3" and r["valid"] is False and r["error"] == "invalid_argument"
    _, r = result({})
    assert r["valid"] is False
    with pytest.raises(nol.ArgumentTypeError):
        c.vapi_tool_result("t1")  # type: ignore[arg-type]
    start = time.monotonic()
    _, r = result(
        {"id": "t4", "function": {"arguments": {"number": "+14155551212"}}},
        client=hanging_sandbox.client(budget_ms=5000),
        budget_ms=BUDGET_MS,
    )
    assert time.monotonic() - start < BUDGET_S + MARGIN_S
    assert r["fail_open"] == "timeout" and r["caller_name"] is None


def test_a_second_client_takes_the_first_ones_answer_from_redis(sandbox, redis_url) -> None:
    """Two clients (two processes of a cluster) naming one Redis: the second one's lookup of
    a caller the first one fetched costs no request, and is the same verified answer."""
    first = sandbox.client(redis_url=redis_url, redis_key_prefix="nol-py-test:")
    a = first.lookup("+14155550111")
    deadline = time.monotonic() + 5
    # the first client writes to Redis after answering its caller, on the tier's thread
    while first.stats().shared_cache["writes"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.stats().shared_cache["writes"] == 1, first.stats().shared_cache
    # a new client connects to Redis on a thread of its own; until then its lookups skip it
    second = sandbox.client(redis_url=redis_url, redis_key_prefix="nol-py-test:")
    while second.stats().shared_cache["connections"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    b = second.lookup("+14155550111")
    assert second.stats().shared_cache["hits"] == 1, second.stats().shared_cache
    assert second.stats().shared_cache["enabled"] is True
    assert a.verified and b.verified
    assert (b.caller_name, b.receipt_id) == (a.caller_name, a.receipt_id)
    assert first.stats().http_status == {200: 1}
    assert second.stats().http_status == {}, second.stats().http_status


def test_redis_settings_are_checked_by_nol_core_and_never_echo_a_password(sandbox) -> None:
    with pytest.raises(nol.InvalidSetting) as info:
        sandbox.client(redis_url="http://:s3cret-pw@127.0.0.1:6379")
    assert "s3cret-pw" not in str(info.value) and "s3cret-pw" not in repr(info.value)
    with pytest.raises(nol.InvalidSetting):
        sandbox.client(redis_budget_ms=0)
    with pytest.raises(nol.ArgumentTypeError):
        sandbox.client(redis_url=6379)  # type: ignore[arg-type]
    with pytest.raises(nol.ConfigError) as info:
        sandbox.client(tls_ca_file="/nonexistent/ca.pem")
    assert "tls_ca_file" in str(info.value)
    with pytest.raises(nol.InvalidSetting):
        sandbox.client(warm_up_ms=10**6)
