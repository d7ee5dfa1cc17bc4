"""The examples' tool functions, driven with the argument shapes Pipecat and LiveKit Agents
pass, against the sandbox (answers) and a hanging sandbox (neutral results within budget).

scripts/test-python.sh installs both frameworks and sets NOL_REQUIRE_FRAMEWORKS=1, so that a
missing framework fails there instead of skipping."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from types import ModuleType

import pytest

import nol
from conftest import BUDGET_MS, MARGIN_S, ROOT

sys.path.insert(0, str(ROOT / "examples" / "python"))
import caller_signal


def framework(module: str, example: str) -> ModuleType:
    try:
        importlib.import_module(module)
    except ImportError:
        if os.environ.get("NOL_REQUIRE_FRAMEWORKS") == "1":
            raise
        pytest.skip(f"{module} is not installed")
    return importlib.import_module(example)


def test_caller_signal_answers_and_degrades(sandbox, hanging_sandbox) -> None:
    async def main():
        c = sandbox.async_client()
        acme = await caller_signal.caller_signal(c, "+14155551212", "TN-Validation-Passed")
        risky = await caller_signal.caller_signal(c, "+14155550122")
        person = await caller_signal.caller_signal(c, "+14155550100")
        listed = await caller_signal.caller_signal(c, "+14155550111")
        unknown = await caller_signal.caller_signal(c, "+14155559876")
        bad = await caller_signal.caller_signal(c, 42)
        empty = await caller_signal.caller_signal(c, "  ")
        start = time.monotonic()
        hung = await caller_signal.caller_signal(hanging_sandbox.async_client(), "+14155551212")
        took = time.monotonic() - start
        return acme, risky, person, listed, unknown, bad, empty, hung, took

    acme, risky, person, listed, unknown, bad, empty, hung, elapsed = asyncio.run(main())
    # The example returns nol.tool_result: libnol's one rendering for every LLM tool.
    assert acme["caller_name"] == "Acme Support" and acme["verified"] and acme["valid"]
    assert "Acme Support" in acme["message"] and acme["receipt_id"].startswith("nol_rec_")
    assert acme["recommended_action"] == "allow" and acme["fail_open"] is None
    # A verified individual has no name to tell the agent; a listed business is not verified.
    assert person["verified"] and "Verified & online" not in person["message"]
    assert "verified individual" in person["message"]
    assert listed["caller_name"] == "Café Zürich — Bäckerei" and not listed["verified"]
    assert "listed as Café Zürich" in listed["message"]
    assert risky["recommended_action"] == "challenge_or_route" and risky["risk_score"] == 72
    assert "Spam risk is" in risky["message"]
    assert unknown["recommended_action"] == "allow_with_default_policy"
    assert unknown["fail_open"] is None and unknown["caller_name"] is None
    # No number from the LLM: nothing is looked up, and nothing is said about the caller.
    for none in (bad, empty):
        assert (none["valid"], none["fail_open"], none["caller_name"]) == (
            False,
            "anonymous",
            None,
        )
        assert none["recommended_action"] == "allow_with_default_policy"
    assert (hung["fail_open"], hung["caller_name"], hung["verified"]) == ("timeout", None, False)
    assert hung["recommended_action"] == "allow_with_default_policy"
    assert "isn't available" in hung["message"]
    assert elapsed < BUDGET_MS / 1000 + MARGIN_S
    for result in (acme, risky, unknown, bad, hung):
        json.dumps(result)  # a tool result must be JSON


def test_pipecat_phone_lookup(sandbox, hanging_sandbox) -> None:
    example = framework("pipecat", "pipecat_phone_lookup")
    from pipecat.services.llm_service import FunctionCallParams

    assert example.PHONE_LOOKUP.name == "phone_lookup"
    assert example.PHONE_LOOKUP.required == ["number"]

    async def call(handler, arguments):
        results = []

        async def result_callback(result, *, properties=None):
            results.append(result)

        params = FunctionCallParams(
            function_name="phone_lookup",
            tool_call_id="call_1",
            arguments=arguments,
            llm=None,
            pipeline_worker=None,
            context=None,
            result_callback=result_callback,
        )
        await handler(params)
        assert len(results) == 1
        return results[0]

    async def main():
        client = sandbox.async_client()
        lookup = example.make_phone_lookup(client)
        acme = await call(lookup, {"number": "+14155551212", "verstat": "TN-Validation-Passed"})
        cafe = await call(lookup, {"number": "tel:+1-415-555-0111"})
        missing = await call(lookup, {})
        # The transport's caller wins over what the LLM passes.
        pinned = await call(
            example.make_phone_lookup(client, caller="+14155550100"), {"number": "+14155551212"}
        )
        hung = await call(
            example.make_phone_lookup(hanging_sandbox.async_client()), {"number": "+14155551212"}
        )
        return acme, cafe, missing, pinned, hung

    acme, cafe, missing, pinned, hung = asyncio.run(main())
    assert acme["caller_name"] == "Acme Support" and acme["recommended_action"] == "allow"
    assert cafe["caller_name"] == "Café Zürich — Bäckerei"
    assert cafe["recommended_action"] == "label"
    assert (missing["valid"], missing["fail_open"]) == (False, "anonymous")
    assert pinned["caller_name"] == "Verified & online"
    assert hung["recommended_action"] == "allow_with_default_policy"
    assert hung["fail_open"] == "timeout"


def test_livekit_phone_lookup(sandbox, hanging_sandbox) -> None:
    example = framework("livekit.agents", "livekit_phone_lookup")
    from livekit.agents.llm import FunctionToolCall, ToolContext
    from livekit.agents.llm.utils import execute_function_call

    async def call(tool, arguments: str):
        # What the agent session does with an LLM's tool call: JSON arguments, validated
        # against the tool's signature, then awaited.
        result = await execute_function_call(
            FunctionToolCall(name="phone_lookup", arguments=arguments, call_id="call_1"),
            ToolContext([tool]),
        )
        assert result.fnc_call_out is not None and not result.fnc_call_out.is_error
        return result.raw_output

    async def main():
        client = sandbox.async_client()
        tool = example.make_phone_lookup(client)
        acme = await call(tool, '{"number": "+14155551212"}')
        failed = await call(
            tool, '{"number": "+14155551212", "verstat_value": "TN-Validation-Failed"}'
        )
        anonymous = await call(tool, '{"number": "anonymous"}')
        hung = await call(
            example.make_phone_lookup(hanging_sandbox.async_client()), '{"number": "+14155551212"}'
        )
        return acme, failed, anonymous, hung

    acme, failed, anonymous, hung = asyncio.run(main())
    assert acme["caller_name"] == "Acme Support" and acme["risk_score"] == 8
    assert failed["risk_score"] == 48
    assert (anonymous["valid"], anonymous["fail_open"]) == (False, "anonymous")
    assert (hung["fail_open"], hung["caller_name"]) == ("timeout", None)


def test_examples_need_no_exception_handling_from_nol() -> None:
    # Every nol exception is a programming error the example guards against; lookups never raise.
    assert issubclass(nol.NolError, Exception)
