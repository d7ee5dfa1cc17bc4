"""The supplementary caller signal an agent's tool returns, shared by the Pipecat and LiveKit
examples. Framework-free: one coroutine.

The result is `nol.tool_result(decision)`, rendered by libnol exactly as for every other host
(Vapi, MCP): `valid`, `number`, `caller_name`, `verified` (a verified identity),
`identity_type`, `spam_risk`, `risk_score`, `recommended_action`, `receipt_id`, `fail_open`,
and `message`, a sentence the LLM can speak around.

It is advisory. The agent may greet a verified business by name or be careful with an
elevated-risk caller, but it must never refuse or end a call because of it, and a failed
lookup says nothing about the caller (numbers.online fails open).
"""

from __future__ import annotations

from typing import Any

import nol


async def caller_signal(
    client: nol.AsyncClient, number: Any, verstat: Any = None, attestation: Any = None
) -> dict[str, Any]:
    """Looks the caller up within the client's budget. Never raises: the service's failures
    fail open inside nol, and a missing or non-text number from the LLM is looked up as no
    number at all (it fails open at once, without a request, as `anonymous`)."""
    decision = await client.lookup(
        number.strip() if isinstance(number, str) else "",
        verstat=verstat if isinstance(verstat, str) else None,
        attestation=attestation if isinstance(attestation, str) else None,
    )
    return nol.tool_result(decision)
