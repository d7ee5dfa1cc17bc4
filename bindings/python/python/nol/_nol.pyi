"""Type stubs of the native module ``nol._nol`` (re-exported by ``nol``)."""

from typing import Any, Callable, Final

__version__: Final[str]

SETTINGS: Final[tuple[dict[str, Any], ...]]
"""nol-core's table of settings, one dict each: ``name``, ``kind`` (``int``, ``one_of``,
``flag`` or ``text``), ``min`` and ``max`` (``int``), ``values`` (``one_of``), ``default`` (None
when unset) and ``doc``."""

class NolError(Exception):
    """The root of every exception nol raises. Lookups never raise it for anything the network
    or the service does: they fail open."""

class ConfigError(NolError, ValueError):
    """The client or policy could not be made from its configuration."""

class InvalidPublicKey(ConfigError):
    """A trusted public key could not be read: no Ed25519 PUBLIC KEY block in the PEM."""

class InvalidNumber(NolError, ValueError):
    """Not a possible telephone number (raised by ``normalize`` only)."""

class Anonymous(NolError, ValueError):
    """The caller withheld the number (raised by ``normalize`` only). Not an InvalidNumber."""

class InvalidArgument(NolError, ValueError):
    """An argument outside its allowed values."""

class ArgumentTypeError(NolError, TypeError):
    """An argument of the wrong type (a str where an int belongs, say). Also a TypeError."""

class InvalidSetting(ConfigError, InvalidArgument):
    """A setting outside its range or values (see ``SETTINGS``): both a ConfigError and an
    InvalidArgument."""

    setting: str
    """The setting's name."""

_Pem = str | bytes

def normalize(number: str, country: str | None = None) -> str:
    """Normalizes a calling number to E.164. Raises InvalidNumber, Anonymous, or
    InvalidArgument (unknown country)."""

def parse_verstat(value: str) -> Stir:
    """Reads a verstat token, a ``verstat=`` parameter or a header value. Never raises."""

def verify_response(body: bytes | str, public_key_pem: _Pem | TrustedKeys) -> bool:
    """True only if a trusted key signed the body's canonical form (as the service's Node
    makes it). Never raises for a bad body; raises InvalidPublicKey for a bad PEM."""

def tool_result(decision: Decision) -> dict[str, Any]:
    """The result an LLM tool returns for a caller check, rendered by nol-core."""

def llm_message(decision: Decision) -> str:
    """A sentence an LLM can speak around a decision."""

class TrustedKeys:
    """The service's trusted Ed25519 public keys, read once from PEM."""

    def __init__(self, pem: _Pem) -> None: ...
    def __len__(self) -> int: ...

class Stir:
    """STIR/SHAKEN as the switch saw it."""

    @property
    def verstat(self) -> str | None:
        """``TN-Validation-Passed``, ``TN-Validation-Failed``, ``No-TN-Validation`` or None."""
    @property
    def attestation(self) -> str | None:
        """``A``, ``B``, ``C`` or None."""
    @property
    def passed(self) -> bool: ...
    @property
    def failed(self) -> bool: ...
    @property
    def description(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Policy:
    """What the operator decided about how answers may change a call (all opt-in)."""

    def __init__(
        self,
        *,
        risk_tag: str | None = None,
        risk_threshold: int | None = None,
        block: bool = False,
        screening_contact: str | None = None,
        max_name_len: int | None = None,
        route_advance_code: int | None = None,
    ) -> None:
        """Unset numbers take nol-core's defaults (``SETTINGS``); a value out of range raises
        InvalidSetting."""
    @property
    def risk_tag(self) -> str | None: ...
    @property
    def risk_threshold(self) -> int: ...
    @property
    def block(self) -> bool: ...
    @property
    def screening_contact(self) -> str | None: ...
    @property
    def max_name_len(self) -> int: ...
    @property
    def route_advance_code(self) -> int: ...

class Decision:
    """What an inbound call should do. Always exists: without a usable verified answer it is
    ``allow_with_default_policy`` and ``fail_open`` says why."""

    @property
    def action(self) -> str: ...
    @property
    def caller_name(self) -> str | None: ...
    @property
    def risk_score(self) -> int | None: ...
    @property
    def risk_level(self) -> str | None: ...
    @property
    def identity_type(self) -> str | None: ...
    @property
    def result(self) -> str | None: ...
    @property
    def receipt_id(self) -> str | None: ...
    @property
    def number(self) -> str | None: ...
    @property
    def stir(self) -> Stir: ...
    @property
    def verified(self) -> bool: ...
    @property
    def identity_verified(self) -> bool: ...
    @property
    def from_cache(self) -> bool: ...
    @property
    def cache_age(self) -> float | None: ...
    @property
    def fail_open(self) -> str | None: ...
    @property
    def http_status(self) -> int | None: ...
    @property
    def sip_code(self) -> int: ...
    @property
    def sip_reason(self) -> str: ...
    @property
    def sip_contact(self) -> str | None: ...
    @property
    def sip_display_name(self) -> str | None: ...
    @property
    def agi_variables(self) -> dict[str, str]: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def display_line(self) -> str: ...
    @property
    def ttl_seconds(self) -> float | None: ...
    def to_json(self) -> str:
        """nol-core's JSON view (stable keys), byte for byte as every binding gives it."""
    def to_dict(self) -> dict[str, Any]:
        """``json.loads(self.to_json())``."""

class Precall:
    @property
    def dnc(self) -> str:
        """``SUPPRESS``, ``NO_MATCH`` (not a consent grant) or ``UNKNOWN``."""
    @property
    def compliance_signal(self) -> Any: ...
    @property
    def receipt_id(self) -> str | None: ...
    @property
    def fail_open(self) -> str | None: ...

class Enrollment:
    @property
    def enrolled(self) -> bool: ...
    @property
    def number(self) -> str | None: ...
    @property
    def fail_open(self) -> str | None: ...

class Stats:
    @property
    def lookups(self) -> int: ...
    @property
    def cache_hits(self) -> int: ...
    @property
    def verified(self) -> int: ...
    @property
    def shared_flights(self) -> int: ...
    @property
    def fail_open(self) -> dict[str, int]: ...
    @property
    def http_status(self) -> dict[int, int]: ...
    @property
    def latency_p50_ms(self) -> float: ...
    @property
    def latency_p90_ms(self) -> float: ...
    @property
    def latency_p99_ms(self) -> float: ...
    @property
    def latency_max_ms(self) -> float: ...
    @property
    def workers_busy(self) -> int: ...
    @property
    def workers(self) -> int: ...
    @property
    def circuit_open(self) -> bool: ...
    @property
    def shared_cache(self) -> dict[str, int | bool]: ...

class Client:
    """The numbers.online client: lookups never raise and never outlast the budget.
    Thread-safe; the interpreter is released while it waits."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        public_key_pem: _Pem | TrustedKeys | None = None,
        *,
        budget_ms: int | None = None,
        cache_size: int | None = None,
        policy: Policy | None = None,
        default_country: str | None = None,
        max_in_flight: int | None = None,
        circuit_breaker: bool = True,
        breaker_failures: int | None = None,
        breaker_cool_down_ms: int | None = None,
        rate_limit_per_minute: int | None = None,
        tls_ca_file: str | None = None,
        warm_up_ms: int | None = None,
        redis_url: str | None = None,
        redis_key_prefix: str | None = None,
        redis_budget_ms: int | None = None,
    ) -> None:
        """Unset numbers take nol-core's defaults (``SETTINGS``); a value out of range raises
        InvalidSetting. ``rate_limit_per_minute`` None or 0: no limit. ``redis_url`` names the
        shared cache every client of a cluster reads and fills (each answer verified again)."""
    @property
    def budget_ms(self) -> int: ...
    @property
    def base_url(self) -> str: ...
    @property
    def policy(self) -> Policy: ...
    def lookup(
        self,
        number: str,
        *,
        verstat: str | None = None,
        attestation: str | None = None,
        context: str = "inbound_voice",
        to: str | None = None,
        local_contact: str | None = None,
    ) -> Decision: ...
    def lookup_callback(
        self,
        number: str,
        done: Callable[[Decision], object],
        *,
        verstat: str | None = None,
        attestation: str | None = None,
        context: str = "inbound_voice",
        to: str | None = None,
        local_contact: str | None = None,
    ) -> None: ...
    def retell_inbound(
        self,
        body: bytes | str | dict[str, Any],
        *,
        override_agent_id: str | None = None,
        override_agent_version: float | None = None,
        metadata: dict[str, Any] | None = None,
        budget_ms: int | None = None,
    ) -> dict[str, Any]: ...
    def retell_inbound_callback(
        self,
        body: bytes | str | dict[str, Any],
        done: Callable[[dict[str, Any]], object],
        *,
        override_agent_id: str | None = None,
        override_agent_version: float | None = None,
        metadata: dict[str, Any] | None = None,
        budget_ms: int | None = None,
    ) -> None: ...
    def vapi_tool_result(
        self, tool_call: dict[str, Any], *, budget_ms: int | None = None
    ) -> dict[str, Any]: ...
    def vapi_tool_result_callback(
        self,
        tool_call: dict[str, Any],
        done: Callable[[dict[str, Any]], object],
        *,
        budget_ms: int | None = None,
    ) -> None: ...
    def precall(self, from_number: str, to_number: str) -> Precall: ...
    def enroll(self, number: str) -> Enrollment: ...
    def stats(self) -> Stats: ...
