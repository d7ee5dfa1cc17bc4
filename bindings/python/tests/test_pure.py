"""The pure functions, with good and bad input, and the exception hierarchy."""

from __future__ import annotations

import inspect
import json

import pytest

import nol


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+14155551212", None, "+14155551212"),
        ("(415) 555-1212", "US", "+14155551212"),
        ("tel:+1-415-555-1212", None, "+14155551212"),
        ("sip:+14155551212@pbx.example;user=phone", None, "+14155551212"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", None, "+442079460018"),
    ],
)
def test_normalize_good(raw: str, country: str | None, expected: str) -> None:
    assert nol.normalize(raw, country) == expected
    # Normalizing the result gives it back unchanged.
    assert nol.normalize(expected) == expected


@pytest.mark.parametrize("raw", ["hello", "+1", "+999123456789", "4155551212"])
def test_normalize_invalid(raw: str) -> None:
    with pytest.raises(nol.InvalidNumber):
        nol.normalize(raw)


@pytest.mark.parametrize("raw", ["anonymous", "Restricted", "", "sip:anonymous@anonymous.invalid"])
def test_normalize_anonymous_is_distinct(raw: str) -> None:
    with pytest.raises(nol.Anonymous) as info:
        nol.normalize(raw)
    assert not isinstance(info.value, nol.InvalidNumber)


def test_normalize_unknown_country_is_an_argument_error() -> None:
    with pytest.raises(nol.InvalidArgument):
        nol.normalize("4155551212", "XX")


def test_normalize_wrong_type() -> None:
    with pytest.raises(nol.ArgumentTypeError):
        nol.normalize(4155551212)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        nol.normalize("4155551212", country=1)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        nol.parse_verstat(None)  # type: ignore[arg-type]
    # Also a TypeError, as a Python user would catch it.
    with pytest.raises(TypeError):
        nol.normalize(None)  # type: ignore[arg-type]


def test_exception_hierarchy() -> None:
    for exc in (
        nol.InvalidNumber,
        nol.Anonymous,
        nol.ConfigError,
        nol.InvalidArgument,
        nol.InvalidPublicKey,
    ):
        assert issubclass(exc, nol.NolError)
        assert issubclass(exc, ValueError)
        assert exc.__module__ == "nol"
    assert issubclass(nol.InvalidPublicKey, nol.ConfigError)
    # A setting out of range is both: a configuration error and a bad argument.
    assert issubclass(nol.InvalidSetting, nol.ConfigError)
    assert issubclass(nol.InvalidSetting, nol.InvalidArgument)
    assert nol.InvalidSetting.__module__ == "nol"
    assert issubclass(nol.ArgumentTypeError, nol.NolError)
    assert issubclass(nol.ArgumentTypeError, TypeError)
    assert nol.ArgumentTypeError.__module__ == "nol"
    assert not issubclass(nol.NolError, ValueError)
    # A ValueError handler catches a bad number, as a Python user would expect.
    try:
        nol.normalize("not a number")
    except ValueError as e:
        assert isinstance(e, nol.NolError)


@pytest.mark.parametrize(
    ("value", "verstat", "attestation"),
    [
        ("TN-Validation-Passed", "TN-Validation-Passed", None),
        ("TN-Validation-Passed-A", "TN-Validation-Passed", "A"),
        ("verstat=TN-Validation-Failed", "TN-Validation-Failed", None),
        (
            "<sip:+14155551212@carrier.example;user=phone;verstat=No-TN-Validation>",
            "No-TN-Validation",
            None,
        ),
        ("garbage", None, None),
        ("TN-Validation-Passedfoo", None, None),
        ("", None, None),
    ],
)
def test_parse_verstat(value: str, verstat: str | None, attestation: str | None) -> None:
    stir = nol.parse_verstat(value)
    assert isinstance(stir, nol.Stir)
    assert (stir.verstat, stir.attestation) == (verstat, attestation)
    assert stir.passed == (verstat == "TN-Validation-Passed")
    assert stir.failed == (verstat == "TN-Validation-Failed")


def test_stir_is_a_value() -> None:
    a, b = nol.parse_verstat("TN-Validation-Passed-A"), nol.parse_verstat("TN-Validation-Passed-A")
    assert a == b and hash(a) == hash(b)
    assert a != nol.parse_verstat("TN-Validation-Passed")
    assert repr(a) == "Stir(verstat='TN-Validation-Passed', attestation='A')"
    assert a.description == "verified"


def test_verify_response_good_and_tampered(sandbox) -> None:
    pem = sandbox.public_key_pem
    body = sandbox.raw_lookup("+14155550111")  # "Café Zürich — Bäckerei": non-ASCII
    assert nol.verify_response(body, pem)
    assert nol.verify_response(body.decode("utf-8"), pem)
    assert nol.verify_response(body, pem.encode())
    assert nol.verify_response(body, nol.TrustedKeys(pem))
    doc = json.loads(body)
    # Re-serialized in another key order and with other whitespace: still the same values.
    assert nol.verify_response(json.dumps(doc, indent=2, ensure_ascii=True), pem)
    doc["risk_score"] = 0 if doc.get("risk_score") != 0 else 1
    assert not nol.verify_response(json.dumps(doc), pem)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"a":1,"a":2,"response_signature":"ed25519:AAAA"}',
        b'{"response_signature":"rsa:abc"}',
        b'{"response_signature":17}',
        "\u00ff",
    ],
)
def test_verify_response_bad_bodies_are_false(sandbox, body) -> None:
    assert nol.verify_response(body, sandbox.public_key_pem) is False


def test_verify_response_duplicate_key_is_not_verifiable(sandbox) -> None:
    body = sandbox.raw_lookup("+14155551212").decode()
    # A second copy of a member: the signature no longer means one thing.
    dup = body[:-1] + ',"risk_score":99}'
    assert not nol.verify_response(dup, sandbox.public_key_pem)


def test_verify_response_bad_key_and_types(sandbox) -> None:
    body = sandbox.raw_lookup("+14155551212")
    with pytest.raises(nol.InvalidPublicKey):
        nol.verify_response(body, "not a pem")
    with pytest.raises(nol.InvalidPublicKey):
        nol.TrustedKeys("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(nol.ArgumentTypeError):
        nol.verify_response(12, sandbox.public_key_pem)  # type: ignore[arg-type]
    with pytest.raises(nol.ArgumentTypeError):
        nol.verify_response(body, 12)  # type: ignore[arg-type]
    assert len(nol.TrustedKeys(sandbox.public_key_pem)) == 1


def test_verify_response_other_key_is_false(sandbox) -> None:
    other = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
        "-----END PUBLIC KEY-----\n"
    )
    assert not nol.verify_response(sandbox.raw_lookup("+14155551212"), other)
    # Several trusted keys (a rotation): any one that signed is enough.
    assert nol.verify_response(sandbox.raw_lookup("+14155551212"), other + sandbox.public_key_pem)


def test_policy_values() -> None:
    p = nol.Policy(risk_tag="SPAM?", risk_threshold=60, block=True)
    assert (p.risk_tag, p.risk_threshold, p.block, p.max_name_len) == ("SPAM?", 60, True, 64)
    assert nol.Policy().risk_tag is None
    with pytest.raises(nol.InvalidArgument):
        nol.Policy(risk_threshold=101)
    with pytest.raises(nol.InvalidArgument):
        nol.Policy(route_advance_code=200)
    with pytest.raises(TypeError):
        nol.Policy("SPAM?")  # type: ignore[misc]  (positional: Python's own signature error)
    for bad in ({"risk_threshold": -1}, {"risk_threshold": 2**64}, {"max_name_len": -5}):
        with pytest.raises(nol.InvalidArgument):
            nol.Policy(**bad)  # type: ignore[arg-type]
    for bad in ({"risk_tag": 5}, {"block": "yes"}, {"risk_threshold": "60"}):
        with pytest.raises(nol.ArgumentTypeError):
            nol.Policy(**bad)  # type: ignore[arg-type]


def test_version() -> None:
    assert nol.__version__.count(".") == 2


def test_an_empty_screening_contact_is_refused() -> None:
    """A 302 must say where to go: an empty (or blank, or non-URI) Contact is refused when the
    policy is made, instead of a 302 with an empty Contact on every elevated-risk call."""
    for bad in ("", "   ", "screen", "sip:a b@c", "<sip:a@b>"):
        with pytest.raises(nol.InvalidSetting) as info:
            nol.Policy(screening_contact=bad)
        assert info.value.setting == "screening_contact"
    assert nol.Policy(screening_contact=None).screening_contact is None
    assert nol.Policy(screening_contact="sip:screen@pbx.example").screening_contact == (
        "sip:screen@pbx.example"
    )


def test_settings_table() -> None:
    by_name = {s["name"]: s for s in nol.SETTINGS}
    assert isinstance(nol.SETTINGS, tuple) and len(by_name) == len(nol.SETTINGS)
    for name in ("budget_ms", "cache_size", "breaker_failures", "risk_threshold"):
        assert by_name[name]["kind"] == "int"
        assert by_name[name]["min"] <= by_name[name]["default"] <= by_name[name]["max"]
    assert by_name["route_advance_code"]["kind"] == "one_of"
    assert by_name["route_advance_code"]["default"] in by_name["route_advance_code"]["values"]
    assert (by_name["circuit_breaker"]["kind"], by_name["circuit_breaker"]["default"]) == (
        "flag",
        True,
    )
    assert by_name["risk_tag"]["kind"] == "text" and by_name["risk_tag"]["default"] is None
    # Every setting is a keyword of nol.Client or nol.Policy, and their defaults are nol-core's.
    client_kw = set(inspect.signature(nol.Client).parameters)
    policy_kw = set(inspect.signature(nol.Policy).parameters)
    assert set(by_name) <= client_kw | policy_kw
    p = nol.Policy()
    for name in policy_kw & set(by_name):
        if by_name[name]["kind"] in ("int", "one_of", "flag"):
            assert getattr(p, name) == by_name[name]["default"], name


def numeric_settings():
    return [s for s in nol.SETTINGS if s["kind"] in ("int", "one_of")]


@pytest.mark.parametrize("setting", numeric_settings(), ids=lambda s: s["name"])
def test_every_numeric_setting_admits_its_bounds_and_refuses_past_them(setting, sandbox) -> None:
    """For every number in nol-core's table: min and max are accepted; min-1 and max+1 (and
    negatives, and ints far past 64 bits) raise nol.InvalidSetting naming the setting, never
    OverflowError. Client settings through nol.Client, policy ones through nol.Policy."""
    from conftest import SANDBOX_KEY

    name = setting["name"]
    policy_kw = set(inspect.signature(nol.Policy).parameters)

    def make(value):
        if name in policy_kw:
            return nol.Policy(**{name: value})
        return nol.Client(SANDBOX_KEY, sandbox.url, sandbox.public_key_pem, **{name: value})

    if setting["kind"] == "int":
        good = [setting["min"], setting["max"]]
        bad = [setting["min"] - 1, setting["max"] + 1]
    else:
        good = list(setting["values"])
        bad = [min(good) - 1, max(good) + 1, *range(300, 700, 97)]
        bad = [b for b in bad if b not in good]
    # max_in_flight's max starts that many worker threads: fine, and part of the check.
    for value in good:
        made = make(value)
        if isinstance(made, nol.Policy):
            assert getattr(made, name) == value
    for value in [*bad, -1, -(2**80), 2**64, 2**200]:
        with pytest.raises(nol.InvalidSetting) as info:
            make(value)
        assert info.value.setting == name, value
        assert isinstance(info.value, nol.ConfigError) and isinstance(
            info.value, nol.InvalidArgument
        )
    for wrong in ("1", 1.0, True):
        with pytest.raises(nol.ArgumentTypeError):
            make(wrong)


def test_decision_json_is_nol_cores(sandbox) -> None:
    from conftest import SANDBOX_KEY

    c = nol.Client(SANDBOX_KEY, sandbox.url, sandbox.public_key_pem, budget_ms=2000)
    d = c.lookup("+14155551212", verstat="TN-Validation-Passed", attestation="A")
    text = d.to_json()
    assert text == json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    as_dict = d.to_dict()
    assert as_dict == json.loads(text)
    assert list(as_dict) == list(json.loads(text))  # the same keys in the same order
    assert list(as_dict)[:3] == ["action", "caller_name", "sip_display_name"]
    assert (as_dict["action"], as_dict["caller_name"], as_dict["verified"]) == (
        "allow",
        "Acme Support",
        True,
    )
    assert as_dict["display_line"] == d.display_line
    assert as_dict["headers"] == d.headers and as_dict["agi_variables"] == d.agi_variables
    failed = c.lookup("not a number")
    assert failed.to_dict()["fail_open"] == "invalid_number"


def test_tool_result_and_llm_message(sandbox) -> None:
    from conftest import SANDBOX_KEY

    c = nol.Client(SANDBOX_KEY, sandbox.url, sandbox.public_key_pem, budget_ms=2000)
    acme = nol.tool_result(c.lookup("+14155551212"))
    assert (acme["valid"], acme["caller_name"], acme["verified"]) == (True, "Acme Support", True)
    assert acme["recommended_action"] == "allow" and acme["dnc"] == "unknown"
    assert acme["message"] == nol.llm_message(c.lookup("+14155551212"))
    assert "a verified caller, Acme Support" in acme["message"]
    failed = c.lookup("anonymous")
    assert nol.tool_result(failed)["fail_open"] == "anonymous"
    assert "can't be checked" in nol.llm_message(failed)
    json.dumps(acme)
    with pytest.raises(nol.ArgumentTypeError):
        nol.tool_result({"action": "allow"})  # type: ignore[arg-type]
