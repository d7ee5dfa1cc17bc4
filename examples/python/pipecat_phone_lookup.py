"""Pipecat: a `phone_lookup` function tool backed by libnol (written for pipecat-ai 1.14).

    from pipecat_phone_lookup import PHONE_LOOKUP, make_phone_lookup
    client = nol.AsyncClient()                      # NUMBERS_ONLINE_API_KEY, NOL_PUBLIC_KEY
    llm.register_function("phone_lookup", make_phone_lookup(client, caller=caller_id))
    context = LLMContext(messages, tools=ToolsSchema(standard_tools=[PHONE_LOOKUP]))

The LLM calls it before it answers (tell it so in the system prompt); the handler answers
through `params.result_callback` with the supplementary signal, or a neutral result when the
lookup fails, always within the client's budget, without blocking the pipeline's event loop.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from caller_signal import caller_signal
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.services.llm_service import FunctionCallParams

import nol

PHONE_LOOKUP = FunctionSchema(
    name="phone_lookup",
    description=(
        "Look up who is calling before you answer: the caller's verified name, if any, and a "
        "risk signal. Supplementary and low-confidence: never refuse a caller because of it."
    ),
    properties={
        "number": {"type": "string", "description": "The caller's phone number (E.164)."},
        "verstat": {
            "type": "string",
            "description": "The STIR/SHAKEN verstat of the call, if known.",
        },
    },
    required=["number"],
)


def make_phone_lookup(
    client: nol.AsyncClient, *, caller: Optional[str] = None, verstat: Optional[str] = None
) -> Callable[[FunctionCallParams], Any]:
    """A Pipecat function handler. `caller`/`verstat`, when the transport knows them (the SIP
    From and its verstat), win over what the LLM passes: the LLM cannot look up someone else."""

    async def phone_lookup(params: FunctionCallParams) -> None:
        args = params.arguments or {}
        result = await caller_signal(
            client, caller or args.get("number"), verstat or args.get("verstat")
        )
        await params.result_callback(result)

    return phone_lookup
