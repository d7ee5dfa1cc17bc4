"""The Python MCP SDK's client against `nol serve` over Streamable HTTP: initialize,
tools/list, and tools/call for each of the five tools.

usage: mcp_client.py URL TOKEN                      (URL is http://HOST:PORT/mcp; the sandbox)
       mcp_client.py --hostile URL TOKEN NUMBER...  (an upstream signing hostile labels)
With --hostile, phone_lookup and caller_risk are called for each NUMBER: the signed label must
arrive (a verified name, no fail-open) with no control character, line or paragraph separator,
bidi override, isolate or mark, or BOM anywhere in the result, structured or text.
Exits non-zero with a message on the first failed expectation.
"""
import asyncio
import json
import sys
import time
import unicodedata

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TOOLS = {"phone_lookup", "line_type", "caller_risk", "dnc_check", "reassigned_check"}


def result_json(result):
    if getattr(result, "structured_content", None):
        return result.structured_content
    return json.loads(result.content[0].text)


# What nol_core::sanitize removes besides the control characters (Unicode category Cc).
UNSAFE = {0x2028, 0x2029, 0x200E, 0x200F, 0xFEFF, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def unsafe_chars(text):
    return [c for c in text if unicodedata.category(c) == "Cc" or ord(c) in UNSAFE]


def assert_clean(where, value):
    """Every string in `value`, keys included, at any depth."""
    if isinstance(value, str):
        bad = unsafe_chars(value)
        assert not bad, f"{where}: {value!r} carries {[hex(ord(c)) for c in bad]}"
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_clean(f"{where}.{k}", k)
            assert_clean(f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_clean(f"{where}[{i}]", v)


async def hostile(session, numbers):
    for number in numbers:
        for tool, args in [("phone_lookup", {"number": number}),
                           ("caller_risk", {"number": number, "verstat": "TN-Validation-Passed"})]:
            result = await session.call_tool(tool, args)
            r = result_json(result)
            assert r.get("fail_open") is None and r.get("verified") is True, (tool, r)
            assert_clean(f"{tool} structured", result.structured_content)
            texts = [b.text for b in result.content if getattr(b, "text", None) is not None]
            assert texts, (tool, result.content)
            for i, text in enumerate(texts):
                assert_clean(f"{tool} content[{i}]", text)
            if tool == "phone_lookup":
                name = r["caller_name"]
                # The label arrived, cleaned: the line break is a space, the rest kept.
                assert name.startswith("Evil X-Injected: yes"), repr(name)
                assert "Bank" in name and name in texts[-1], (name, texts[-1])
    print(f"mcp client: ok (hostile labels sanitized, {len(numbers)} number(s), 2 tools)")


async def main(url, token, hostile_numbers=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "nol-serve", init.server_info
                if hostile_numbers:
                    await hostile(session, hostile_numbers)
                    return
                tools = await session.list_tools()
                names = {t.name for t in tools.tools}
                assert names == TOOLS, names

                r = result_json(await session.call_tool("phone_lookup", {"number": "+14155551212"}))
                assert r["caller_name"] == "Acme Support" and r["verified"] is True, r
                assert r["receipt_id"].startswith("nol_rec_"), r

                r = result_json(await session.call_tool(
                    "caller_risk", {"number": "+14155551212", "verstat": "TN-Validation-Failed"}))
                assert r["risk_score"] == 48, r

                r = result_json(await session.call_tool("phone_lookup", {"number": "+14155559999"}))
                assert r["caller_name"] is None and r["fail_open"] is None, r

                for tool, field in [("line_type", "line_type"), ("dnc_check", "dnc"),
                                    ("reassigned_check", "reassigned")]:
                    r = result_json(await session.call_tool(tool, {"number": "+14155551212"}))
                    assert r[field] == "unknown", (tool, r)

                r = result_json(await session.call_tool("phone_lookup", {"number": "banana"}))
                assert r["valid"] is False, r

                # Fails open within the budget: a hanging and a forging upstream.
                for number, reason in [("+14155550901", "timeout"), ("+14155550914", "bad_signature")]:
                    start = time.monotonic()
                    r = result_json(await session.call_tool("phone_lookup", {"number": number}))
                    took = time.monotonic() - start
                    assert r["fail_open"] == reason and r["caller_name"] is None, r
                    assert took < 2.0, took

    print("mcp client: ok (initialize, tools/list, 5 tools called)")


if __name__ == "__main__":
    if sys.argv[1] == "--hostile":
        asyncio.run(main(sys.argv[2], sys.argv[3], sys.argv[4:]))
    else:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
