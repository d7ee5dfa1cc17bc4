"""The supplementary caller signal an agent's tool returns, shared by the Pipecat and LiveKit
examples. Framework-free: one coroutine, one neutral result.

The result is advisory. The agent may greet a verified business by name or be careful with an
elevated-risk caller, but it must never refuse or end a call because of it, and a failed
lookup says nothing about the caller (numbers.online fails open).
"""

from __future__ import annotations

import logging
from typing import Any

import nol

log = logging.getLogger(__name__)

NEUTRAL_NOTE = "Caller lookup unavailable: treat the caller as unknown and carry on normally."


def neutral(reason: str) -> dict[str, Any]:
    """What the tool returns when there is nothing to say about the caller."""
    return {
        "action": "allow_with_default_policy",
        "caller_name": None,
        "verified": False,
        "risk_level": None,
        "receipt_id": None,
        "lookup": reason,
        "note": NEUTRAL_NOTE,
    }


def signal_from(decision: nol.Decision) -> dict[str, Any]:
    """The tool result for a decision: small, JSON-ready, and worded for an LLM."""
    if decision.fail_open is not None:
        return neutral(decision.fail_open)
    # `decision.verified` says numbers.online signed the answer; `identity_verified` says the
    # caller is a verified business or individual. A listed business is a name, not a check.
    identity_verified = decision.identity_verified
    if decision.action in ("challenge_or_route", "block_candidate"):
        note = "Elevated risk: do not share account details; offer to call back on a known number."
    elif decision.identity_type == "verified_individual":
        note = "The caller is a verified individual; no name is shared, so ask for it."
    elif identity_verified and decision.caller_name:
        note = f"The caller is {decision.caller_name}, a business verified by numbers.online."
    elif decision.caller_name:
        note = f"The number is listed as {decision.caller_name} (not verified): confirm who it is."
    else:
        note = "No record: treat the caller as unknown."
    return {
        "action": decision.action,
        "caller_name": decision.caller_name,
        "verified": identity_verified,
        "identity_type": decision.identity_type,
        "risk_level": decision.risk_level,
        "risk_score": decision.risk_score,
        "receipt_id": decision.receipt_id,
        "lookup": "cached" if decision.from_cache else "ok",
        "note": note,
    }


async def caller_signal(
    client: nol.AsyncClient, number: Any, verstat: Any = None, attestation: Any = None
) -> dict[str, Any]:
    """Looks the caller up within the client's budget; a neutral result on any failure, whether
    the service's (nol fails open by itself) or a bad argument from the LLM."""
    if not isinstance(number, str) or not number.strip():
        return neutral("no_number")
    try:
        decision = await client.lookup(
            number,
            verstat=verstat if isinstance(verstat, str) else None,
            attestation=attestation if isinstance(attestation, str) else None,
        )
    except Exception:  # a programming error must not cost the caller the call
        log.exception("caller lookup failed")
        return neutral("error")
    return signal_from(decision)
