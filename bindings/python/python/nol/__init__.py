"""nol: fail-open caller intelligence (numbers.online) for Python voice agents.

``nol`` wraps libnol, a Rust library: E.164 normalization that agrees with libphonenumber,
STIR/SHAKEN verstat parsing, Ed25519 verification of the service's signed responses exactly as
the service (Node) makes them, and a client whose lookups always fail open within their budget.

>>> import nol
>>> nol.normalize("(415) 555-1212", "US")
'+14155551212'

- :class:`Client` is synchronous and thread-safe; the interpreter is released while it waits.
- :class:`AsyncClient` has the same methods as coroutines that never block the event loop.
- A lookup never raises for anything the network or the service does: its :class:`Decision` is
  then ``allow_with_default_policy`` with ``fail_open`` set to the reason.
- Exceptions are for programming and configuration errors only, all from :class:`NolError`.
- Every setting's range and default is nol-core's, listed in :data:`SETTINGS`.
- :meth:`Client.retell_inbound`, :meth:`Client.vapi_tool_result`, :func:`tool_result` and
  :func:`llm_message` give a decision in the forms voice-agent platforms take.
"""

from __future__ import annotations

from ._async import AsyncClient
from ._nol import (
    SETTINGS,
    Anonymous,
    ArgumentTypeError,
    Client,
    ConfigError,
    Decision,
    Enrollment,
    InvalidArgument,
    InvalidNumber,
    InvalidPublicKey,
    InvalidSetting,
    NolError,
    Policy,
    Precall,
    Stats,
    Stir,
    TrustedKeys,
    __version__,
    llm_message,
    normalize,
    parse_verstat,
    tool_result,
    verify_response,
)

__all__ = [
    "SETTINGS",
    "Anonymous",
    "ArgumentTypeError",
    "AsyncClient",
    "Client",
    "ConfigError",
    "Decision",
    "Enrollment",
    "InvalidArgument",
    "InvalidNumber",
    "InvalidPublicKey",
    "InvalidSetting",
    "NolError",
    "Policy",
    "Precall",
    "Stats",
    "Stir",
    "TrustedKeys",
    "__version__",
    "llm_message",
    "normalize",
    "parse_verstat",
    "tool_result",
    "verify_response",
]
