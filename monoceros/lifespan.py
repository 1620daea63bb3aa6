"""The ASGI lifespan protocol: startup and shutdown around serving.

Theory of operation
-------------------
With ``--lifespan on`` or ``auto`` the app is called once with a
``lifespan`` scope in its own task for the whole life of the server.  We send
``lifespan.startup`` and wait for ``.complete`` or ``.failed``; at shutdown,
``lifespan.shutdown`` likewise.  The task ending early answers the wait too
(:meth:`Lifespan._main` turns its end into a phase), so nothing can hang on an
app that stopped listening.

Under ``auto``, an app that raises or returns before it asked for the first
message does not speak lifespan: it is served without it, as uvicorn does.
Under ``on`` that is a startup failure.  An app that raises *after* it took
the startup message failed its startup, whatever the mode: serving an app
whose startup half ran would hide the error.  ``state`` is the dict the app
fills at startup; every request scope gets a shallow copy of it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

from monoceros._types import ASGIApp, Message

logger = logging.getLogger("monoceros.error")


class LifespanPhase(enum.Enum):
    IDLE = 0
    STARTING = 1
    STARTED = 2
    STOPPING = 3
    DONE = 4
    UNSUPPORTED = 5
    FAILED = 6


_EXPECTED = {
    LifespanPhase.STARTING: ("lifespan.startup.complete", "lifespan.startup.failed"),
    LifespanPhase.STOPPING: ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
}


class Lifespan:
    """Drive the app's lifespan; ``mode`` is 'auto', 'on' or 'off'."""

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.phase = LifespanPhase.IDLE
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._answer: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._received = False
        self.error_message = ""

    @property
    def failed(self) -> bool:
        return self.phase is LifespanPhase.FAILED

    async def startup(self) -> None:
        """Run the app's startup; afterwards ``phase`` is STARTED, UNSUPPORTED or FAILED."""
        if self.mode == "off":
            self.phase = LifespanPhase.UNSUPPORTED
            return
        logger.info("Waiting for application startup.")
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self.phase = LifespanPhase.STARTING
        self._to_app.put_nowait({"type": "lifespan.startup"})
        self._task = loop.create_task(self._main())
        await self._answer
        if self.phase is LifespanPhase.STARTED:
            logger.info("Application startup complete.")
        elif self.phase is LifespanPhase.FAILED:
            logger.error("Application startup failed.%s", _suffix(self.error_message))

    async def shutdown(self) -> None:
        """Run the app's shutdown, if its startup completed and it still listens."""
        task = self._task
        if self.phase is not LifespanPhase.STARTED or task is None or task.done():
            return
        logger.info("Waiting for application shutdown.")
        self.phase = LifespanPhase.STOPPING
        self._answer = asyncio.get_running_loop().create_future()
        self._to_app.put_nowait({"type": "lifespan.shutdown"})
        await self._answer
        if self.phase is LifespanPhase.DONE:
            logger.info("Application shutdown complete.")
        else:
            logger.error("Application shutdown failed.%s", _suffix(self.error_message))

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._ended(None)
            raise
        except BaseException as exc:
            self._ended(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._ended(None)

    def _ended(self, exc: BaseException | None) -> None:
        """The app's lifespan call is over: settle the phase and wake the waiter."""
        phase = self.phase
        if phase in (LifespanPhase.STARTING, LifespanPhase.STOPPING):
            if self.mode == "auto" and phase is LifespanPhase.STARTING and not self._received:
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
                self.phase = LifespanPhase.UNSUPPORTED
            else:
                self.phase = LifespanPhase.FAILED
                if exc is not None:
                    logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
                elif phase is LifespanPhase.STARTING and not self._received:
                    self.error_message = "The application does not support the ASGI lifespan protocol."
                else:
                    self.error_message = "The application returned without answering."
        elif exc is not None and phase is not LifespanPhase.FAILED:
            # Raised while serving, after startup completed.  (After a
            # ``.failed`` message the app's own message told the story.)
            logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
        self._wake()

    def _wake(self) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(None)

    async def receive(self) -> Message:
        self._received = True
        return await self._to_app.get()

    async def send(self, message: Message) -> None:
        mtype = message.get("type")
        if mtype not in _EXPECTED.get(self.phase, ()):
            raise RuntimeError(f"Unexpected ASGI lifespan message {mtype!r} in phase {self.phase.name}")
        if str(mtype).endswith(".failed"):
            self.phase = LifespanPhase.FAILED
            self.error_message = str(message.get("message") or "")
        else:
            self.phase = LifespanPhase.STARTED if self.phase is LifespanPhase.STARTING else LifespanPhase.DONE
        self._wake()


def _suffix(message: str) -> str:
    return f" {message}" if message else ""


__all__ = ["Lifespan", "LifespanPhase"]
