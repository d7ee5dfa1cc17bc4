"""The Python MCP SDK's client against `nol serve` over Streamable HTTP: initialize,
tools/list, and tools/call for each of the five tools.

usage: mcp_client.py URL TOKEN   (URL is http://HOST:PORT/mcp)
Exits non-zero with a message on the first failed expectation.
"""
import asyncio
import json
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TOOLS = {"phone_lookup", "line_type", "caller_risk", "dnc_check", "reassigned_check"}


def result_json(result):
    if getattr(result, "structured_content", None):
        return result.structured_content
    return json.loads(result.content[0].text)


async def main(url, token):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "nol-serve", init.server_info
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

                # Hostile label, when the test's upstream serves one.
                if len(sys.argv) > 3:
                    r = result_json(await session.call_tool("phone_lookup", {"number": sys.argv[3]}))
                    name = r["caller_name"] or ""
                    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name), repr(name)
    print("mcp client: ok (initialize, tools/list, 5 tools called)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
