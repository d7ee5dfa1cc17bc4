"""LiveKit Agents: a `phone_lookup` function tool backed by libnol (written for livekit-agents 1.8).

    from livekit_phone_lookup import make_phone_lookup
    client = nol.AsyncClient()                      # NUMBERS_ONLINE_API_KEY, NOL_PUBLIC_KEY
    agent = Agent(instructions=..., tools=[make_phone_lookup(client, caller=sip_from)])

The LLM calls it before it answers; it returns the supplementary signal as the tool's result,
or a neutral result when the lookup fails, within the client's budget and without blocking the
agent's event loop.
"""

from __future__ import annotations

from typing import Any, Optional

from caller_signal import caller_signal
from livekit.agents import function_tool
from livekit.agents.llm import FunctionTool

import nol


def make_phone_lookup(
    client: nol.AsyncClient, *, caller: Optional[str] = None, verstat: Optional[str] = None
) -> FunctionTool:
    """A LiveKit function tool. `caller`/`verstat`, when the room knows them (the SIP
    participant's number and its verstat), win over what the LLM passes."""

    @function_tool(name="phone_lookup")
    async def phone_lookup(number: str, verstat_value: Optional[str] = None) -> dict[str, Any]:
        """Look up who is calling before you answer: the caller's verified name, if any, and a
        risk signal. Supplementary and low-confidence: never refuse a caller because of it.

        Args:
            number: The caller's phone number (E.164).
            verstat_value: The STIR/SHAKEN verstat of the call, if known.
        """
        return await caller_signal(client, caller or number, verstat or verstat_value)

    return phone_lookup
