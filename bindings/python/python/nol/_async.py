"""``nol.AsyncClient``: the client for asyncio (Pipecat, LiveKit Agents).

A lookup never runs on the event loop: the native client sends it from its own threads and calls
back when the answer, or the end of the budget, comes; the callback hands the decision to the
loop with ``call_soon_threadsafe``. No thread pool is held while requests are out, so a thousand
concurrent lookups cost a thousand futures, and none can wait longer than the budget.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ._nol import Client, Decision, Enrollment, Precall, Stats

if TYPE_CHECKING:
    from ._nol import Policy, TrustedKeys


_T = TypeVar("_T")


def _settle(future: asyncio.Future[_T], decision: _T) -> None:
    # The awaiting task may have been cancelled meanwhile: then nobody wants the decision.
    if not future.done():
        future.set_result(decision)


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[_T]) -> Callable[[_T], None]:
    def done(decision: _T) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, decision)
        except RuntimeError:
            # The loop was closed before the answer came: nothing is waiting any more.
            pass

    return done


class AsyncClient:
    """The numbers.online client for asyncio: the methods of :class:`nol.Client` as coroutines.

    Takes the same arguments as :class:`nol.Client` (or wraps an existing one with
    :meth:`from_client`, sharing its cache and connections). Awaiting a lookup never blocks the
    event loop, and cancelling the awaiting task is safe: the request finishes (or times out)
    in the background and its answer still fills the cache. Make the client once, at start-up:
    construction loads the numbering metadata (a fraction of a second).
    """

    __slots__ = ("_client",)

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        public_key_pem: str | bytes | TrustedKeys | None = None,
        **options: Any,
    ) -> None:
        self._client = Client(api_key, base_url, public_key_pem, **options)

    @classmethod
    def from_client(cls, client: Client) -> AsyncClient:
        """An AsyncClient that shares ``client`` (its cache, connections and counters)."""
        self = cls.__new__(cls)
        self._client = client
        return self

    @property
    def client(self) -> Client:
        """The synchronous client underneath (same cache, connections and counters)."""
        return self._client

    @property
    def budget_ms(self) -> int:
        """The lookup budget in milliseconds."""
        return self._client.budget_ms

    @property
    def base_url(self) -> str:
        """The service URL lookups go to."""
        return self._client.base_url

    @property
    def policy(self) -> Policy:
        """The operator policy decisions are made with."""
        return self._client.policy

    async def lookup(
        self,
        number: str,
        *,
        verstat: str | None = None,
        attestation: str | None = None,
        context: str = "inbound_voice",
        to: str | None = None,
        local_contact: str | None = None,
    ) -> Decision:
        """Looks up an inbound call; see :meth:`nol.Client.lookup`. Never raises for the
        network or the service, and returns within the client's budget."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._client.lookup_callback(
            number,
            _resolver(loop, future),
            verstat=verstat,
            attestation=attestation,
            context=context,
            to=to,
            local_contact=local_contact,
        )
        return await future

    async def retell_inbound(
        self,
        body: bytes | str | dict[str, Any],
        *,
        override_agent_id: str | None = None,
        override_agent_version: float | None = None,
        metadata: dict[str, Any] | None = None,
        budget_ms: int | None = None,
    ) -> dict[str, Any]:
        """Answers Retell's inbound webhook; see :meth:`nol.Client.retell_inbound`. Never raises
        for a bad body, never blocks the event loop, and returns within the budget."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._client.retell_inbound_callback(
            body,
            _resolver(loop, future),
            override_agent_id=override_agent_id,
            override_agent_version=override_agent_version,
            metadata=metadata,
            budget_ms=budget_ms,
        )
        return await future

    async def vapi_tool_result(
        self, tool_call: dict[str, Any], *, budget_ms: int | None = None
    ) -> dict[str, Any]:
        """Answers one of Vapi's tool calls; see :meth:`nol.Client.vapi_tool_result`. Never
        blocks the event loop, and returns within the budget."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._client.vapi_tool_result_callback(
            tool_call, _resolver(loop, future), budget_ms=budget_ms
        )
        return await future

    async def precall(self, from_number: str, to_number: str) -> Precall:
        """Pre-call check on a destination; see :meth:`nol.Client.precall`. Runs on the loop's
        default executor (the native call releases the interpreter), within the budget."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, functools.partial(self._client.precall, from_number, to_number)
        )

    async def enroll(self, number: str) -> Enrollment:
        """Enrols one of your own verified numbers; see :meth:`nol.Client.enroll`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._client.enroll, number))

    async def stats(self) -> Stats:
        """Counters since the client was made (a snapshot: it never waits)."""
        return self._client.stats()

    def __repr__(self) -> str:
        return f"Async{self._client!r}"
