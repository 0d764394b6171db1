"""The shape every background worker shares: do a round, sleep until woken or a timeout."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

import structlog

log = structlog.get_logger(__name__)


class BackgroundLoop(ABC):
    """Subclasses implement ``run_once`` (returns how much it did) and set ``name`` and
    ``idle_seconds``. A round that did something is followed at once by another; an idle
    one sleeps until ``wake()`` or ``idle_seconds``. An error is logged and retried a second
    later: the work is in the database, so nothing is lost meanwhile."""

    name = "background"
    idle_seconds = 1.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._recheck_after: float | None = None

    def wake(self) -> None:
        self._wake.set()

    def recheck_soon(self, seconds: float) -> None:
        """Make the next idle wait (only the next) at most ``seconds``: a round that did
        part of the work it saw (what was left waits on a row another worker holds) looks
        again soon without spinning."""
        self._recheck_after = seconds

    def stop(self) -> None:
        """Finish the current round, then return from run_forever."""
        self._stopping = True
        self._wake.set()

    @abstractmethod
    async def run_once(self) -> int: ...

    async def run_forever(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(f"{self.name}.error")
                await asyncio.sleep(1.0)
                continue
            if done == 0 and not self._stopping:
                timeout = self.idle_seconds
                if self._recheck_after is not None:
                    timeout, self._recheck_after = min(timeout, self._recheck_after), None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
