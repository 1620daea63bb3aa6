"""The ASGI lifespan protocol: startup and shutdown around serving.

Theory of operation
-------------------
With ``--lifespan on`` or ``auto`` the app is called once with a
``lifespan`` scope in its own task for the whole life of the server.  We send
``lifespan.startup`` and wait for ``.complete`` or ``.failed``; at shutdown,
``lifespan.shutdown`` likewise.  Under ``auto``, an app that raises before it
received anything (it does not speak lifespan) is served without it, as
uvicorn does; under ``on`` that is a startup failure.  ``state`` is the dict
the app fills at startup and every request scope gets a shallow copy of.
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


class Lifespan:
    """Drive the app's lifespan; ``mode`` is 'auto', 'on' or 'off'."""

    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.phase = LifespanPhase.IDLE
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._answer: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self._received = False
        self.error_message = ""

    @property
    def failed(self) -> bool:
        return self.phase is LifespanPhase.FAILED

    async def startup(self) -> None:
        if self.mode == "off":
            self.phase = LifespanPhase.UNSUPPORTED
            return
        logger.info("Waiting for application startup.")
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self._task = loop.create_task(self._main())
        self.phase = LifespanPhase.STARTING
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._answer
        if message["type"] == "lifespan.startup.complete":
            self.phase = LifespanPhase.STARTED
            logger.info("Application startup complete.")
        elif message["type"] == "lifespan.startup.failed":
            self.phase = LifespanPhase.FAILED
            if message.get("message"):
                logger.error(message["message"])
            logger.error("Application startup failed. Exiting.")
        # UNSUPPORTED / FAILED by exception: already logged by _main.

    async def shutdown(self) -> None:
        if self.phase is not LifespanPhase.STARTED:
            return
        logger.info("Waiting for application shutdown.")
        self.phase = LifespanPhase.STOPPING
        self._answer = asyncio.get_running_loop().create_future()
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._answer
        if message["type"] == "lifespan.shutdown.failed":
            if message.get("message"):
                logger.error(message["message"])
            logger.error("Application shutdown failed. Exiting.")
        else:
            logger.info("Application shutdown complete.")
        self.phase = LifespanPhase.DONE

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            if self.mode == "auto" and not self._received:
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
                self.phase = LifespanPhase.UNSUPPORTED
            else:
                logger.error("Exception in 'lifespan' protocol\n", exc_info=exc)
                if self.phase in (LifespanPhase.STARTING, LifespanPhase.STOPPING):
                    self.phase = LifespanPhase.FAILED
            self._answer_with({"type": "lifespan.error"})
            if not isinstance(exc, Exception):
                raise
        else:
            self._answer_with({"type": "lifespan.returned"})
            if self.phase is LifespanPhase.STARTING:
                self.phase = LifespanPhase.UNSUPPORTED if self.mode == "auto" else LifespanPhase.FAILED

    def _answer_with(self, message: Message) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(message)

    async def receive(self) -> Message:
        self._received = True
        return await self._to_app.get()

    async def send(self, message: Message) -> None:
        mtype = message.get("type")
        expected = {
            LifespanPhase.STARTING: ("lifespan.startup.complete", "lifespan.startup.failed"),
            LifespanPhase.STOPPING: ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
        }.get(self.phase, ())
        if mtype not in expected:
            raise RuntimeError(f"Unexpected ASGI lifespan message {mtype!r} in phase {self.phase.name}")
        self._answer_with(message)


__all__ = ["Lifespan", "LifespanPhase"]
