"""RequestCycle in memory: no parser, no socket, a sink that records calls.

These pin down the cycle's own rules (what reaches the sink, in which
order, and what the app sees) independently of HTTP/1.1; the e2e tests show
the same rules on the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

import pytest

from monoceros.errors import ASGIMessageError, ClientDisconnected
from monoceros.protocols.cycle import HIGH_WATER, RequestCycle, RequestState, ResponseState

App = Callable[[Any, Any, Any], Awaitable[None]]


class RecordingSink:
    """A StreamSink that writes down every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.drain_future: asyncio.Future[None] | None = None

    def send_head(self, cycle: RequestCycle, status: int, headers: Any, body: bytes, end: bool) -> None:
        self.calls.append(("head", status, list(headers), body, end))

    def send_body(self, cycle: RequestCycle, data: bytes, end: bool) -> None:
        self.calls.append(("body", data, end))

    def send_informational(self, status: int, headers: Any) -> None:
        self.calls.append(("info", status))

    def abort(self, cycle: RequestCycle) -> None:
        self.calls.append(("abort",))

    def pause_reading(self) -> None:
        self.calls.append(("pause",))

    def resume_reading(self) -> None:
        self.calls.append(("resume",))

    def drain(self) -> asyncio.Future[None] | None:
        return self.drain_future

    def cycle_done(self, cycle: RequestCycle) -> None:
        self.calls.append(("done",))

    def named(self, *names: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] in names]


def make_cycle(
    app: App | None = None,
    *,
    method: str = "GET",
    body_expected: bool = False,
    expect_continue: bool = False,
    keep_alive: bool = True,
) -> tuple[RequestCycle, RecordingSink, list[RequestCycle]]:
    logged: list[RequestCycle] = []
    ctx = SimpleNamespace(loop=asyncio.get_running_loop(), app=app, access_log=True, log_access=logged.append)
    sink = RecordingSink()
    scope = {"type": "http", "method": method, "headers": []}
    cycle = RequestCycle(ctx, sink, scope, method, body_expected, expect_continue, keep_alive)  # type: ignore[arg-type]
    return cycle, sink, logged


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}


# -- receive ------------------------------------------------------------------------------


def test_receive_without_body_then_disconnect_after_the_response():
    async def main() -> None:
        cycle, _sink, _ = make_cycle()
        assert await cycle.receive() == {"type": "http.request", "body": b"", "more_body": False}
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        assert not waiting.done()  # nothing to say until the response ends
        await cycle.send(START)
        await cycle.send({"type": "http.response.body", "body": b"x"})
        assert await waiting == {"type": "http.disconnect"}
        assert await cycle.receive() == {"type": "http.disconnect"}

    run(main())


def test_receive_body_pieces_and_their_end():
    async def main() -> None:
        cycle, _, _ = make_cycle(body_expected=True)
        cycle.feed_body(b"ab")
        cycle.feed_body(b"cd")
        assert await cycle.receive() == {"type": "http.request", "body": b"abcd", "more_body": True}
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        assert not waiting.done()
        cycle.feed_body(b"ef")
        assert await waiting == {"type": "http.request", "body": b"ef", "more_body": True}
        cycle.feed_end()
        assert await cycle.receive() == {"type": "http.request", "body": b"", "more_body": False}
        assert cycle.req_state is RequestState.DELIVERED

    run(main())


def test_read_flow_control_pauses_above_the_high_water_mark():
    async def main() -> None:
        cycle, sink, _ = make_cycle(body_expected=True)
        cycle.feed_body(b"x" * HIGH_WATER)
        assert sink.named("pause") == []
        cycle.feed_body(b"y")
        assert sink.named("pause") == [("pause",)]
        message = await cycle.receive()
        assert len(message["body"]) == HIGH_WATER + 1
        assert sink.named("resume") == [("resume",)]

    run(main())


def test_expect_100_continue_only_when_the_app_asks():
    async def main() -> None:
        cycle, sink, _ = make_cycle(body_expected=True, expect_continue=True)
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        assert sink.named("info") == [("info", 100)]
        cycle.feed_body(b"da")
        assert (await waiting)["body"] == b"da"
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        cycle.feed_body(b"ta")
        cycle.feed_end()
        assert await waiting == {"type": "http.request", "body": b"ta", "more_body": False}
        assert sink.named("info") == [("info", 100)]  # once

        # The body came anyway (an impatient client): no 100 in its middle.
        cycle, sink, _ = make_cycle(body_expected=True, expect_continue=True)
        cycle.feed_body(b"a")
        await cycle.receive()
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        cycle.feed_end()
        await waiting
        assert sink.named("info") == []

        # The response started first: a 100 would come after it; never.
        cycle, sink, _ = make_cycle(body_expected=True, expect_continue=True)
        await cycle.send(START)
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        assert sink.named("info") == []
        cycle.feed_end()
        await waiting
        assert cycle.expect_continue is False

        # Content-Length: 0 with Expect: nothing to continue.
        cycle, sink, _ = make_cycle(body_expected=False, expect_continue=True)
        await cycle.receive()
        assert sink.named("info") == [] and cycle.expect_continue is False

    run(main())


def test_client_eof_after_the_body():
    async def main() -> None:
        # EOF before the app read the body: it gets the body, then a disconnect.
        cycle, sink, _ = make_cycle(body_expected=True)
        cycle.feed_body(b"all")
        cycle.feed_end()
        cycle.client_eof()
        assert await cycle.receive() == {"type": "http.request", "body": b"all", "more_body": False}
        assert await cycle.receive() == {"type": "http.disconnect"}
        # ... and can still answer: the write side is open.
        await cycle.send(START)
        await cycle.send({"type": "http.response.body", "body": b"ok"})
        assert sink.named("head") == [("head", 200, [(b"content-type", b"text/plain")], b"ok", True)]

        # EOF while the app waits after the body: it wakes with a disconnect.
        cycle, sink, _ = make_cycle()
        await cycle.receive()
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        cycle.client_eof()
        assert await waiting == {"type": "http.disconnect"}
        assert cycle.req_state is RequestState.EOF

        # EOF in the middle of the body: the client is gone.
        cycle, sink, _ = make_cycle(body_expected=True)
        cycle.feed_body(b"par")
        cycle.client_eof()
        assert await cycle.receive() == {"type": "http.disconnect"}
        with pytest.raises(ClientDisconnected):
            await cycle.send(START)

    run(main())


def test_client_gone():
    async def main() -> None:
        cycle, _sink, _ = make_cycle(body_expected=True)
        cycle.feed_body(b"part")
        waiting = asyncio.ensure_future(cycle.receive())
        assert (await waiting)["body"] == b"part"
        waiting = asyncio.ensure_future(cycle.receive())
        await settle()
        cycle.client_gone()
        assert await waiting == {"type": "http.disconnect"}
        cycle.feed_body(b"late")  # ignored
        assert await cycle.receive() == {"type": "http.disconnect"}
        with pytest.raises(ClientDisconnected) as info:
            await cycle.send(START)
        assert isinstance(info.value, OSError)

    run(main())


# -- send ---------------------------------------------------------------------------------


def test_known_body_goes_out_with_its_head_in_one_call():
    async def main() -> None:
        cycle, sink, logged = make_cycle()
        assert cycle.nothing_sent()
        await cycle.send(START)
        assert sink.calls == []  # held back
        assert cycle.nothing_sent()
        await cycle.send({"type": "http.response.body", "body": b"hello"})
        assert not cycle.nothing_sent()
        assert sink.calls == [("head", 200, [(b"content-type", b"text/plain")], b"hello", True)]
        assert cycle.resp_state is ResponseState.DONE
        assert logged == [cycle] and cycle.response_bytes == 5
        await settle()  # the scheduled flush finds nothing to do
        assert len(sink.calls) == 1

    run(main())


def test_a_head_left_waiting_is_flushed_on_the_next_loop_turn():
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        await cycle.send(START)
        await settle()
        assert sink.calls == [("head", 200, [(b"content-type", b"text/plain")], b"", False)]
        assert not cycle.nothing_sent()
        await cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
        await cycle.send({"type": "http.response.body", "body": b"", "more_body": True})  # nothing to send
        await cycle.send({"type": "http.response.body", "body": b"b"})
        assert sink.calls[1:] == [("body", b"a", False), ("body", b"b", True)]

    run(main())


def test_write_flow_control_waits_for_the_sink():
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        sink.drain_future = asyncio.get_running_loop().create_future()
        await cycle.send(START)
        sending = asyncio.ensure_future(
            cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
        )
        await settle()
        assert not sending.done()  # written, and waiting for the client to read
        written = [c[3] if c[0] == "head" else c[1] for c in sink.named("head", "body")]
        assert b"".join(written) == b"a"
        sink.drain_future.set_result(None)
        await sending
        # The client leaves while the app waits: send() raises.
        sink.drain_future = asyncio.get_running_loop().create_future()
        sending = asyncio.ensure_future(
            cycle.send({"type": "http.response.body", "body": b"b", "more_body": True})
        )
        await settle()
        cycle.client_gone()
        sink.drain_future.set_result(None)
        with pytest.raises(ClientDisconnected):
            await sending
        # The final message does not wait.
        cycle, sink, _ = make_cycle()
        sink.drain_future = asyncio.get_running_loop().create_future()
        await cycle.send(START)
        await cycle.send({"type": "http.response.body", "body": b"end"})

    run(main())


def test_head_and_no_body_statuses():
    async def main() -> None:
        cycle, sink, _ = make_cycle(method="HEAD")
        await cycle.send(START)
        await cycle.send({"type": "http.response.body", "body": b"the GET body"})
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"12")]
        assert sink.calls == [("head", 200, headers, b"", True)]
        assert cycle.response_bytes == 0

        cycle, sink, _ = make_cycle(method="HEAD")
        await cycle.send({**START, "headers": [(b"content-length", b"99")]})
        await cycle.send({"type": "http.response.body", "body": b"x"})  # no length check for HEAD
        assert sink.calls == [("head", 200, [(b"content-length", b"99")], b"", True)]

        for status in (204, 304):
            cycle, sink, _ = make_cycle()
            await cycle.send({"type": "http.response.start", "status": status})
            await cycle.send({"type": "http.response.body", "body": b"dropped"})
            assert sink.calls == [("head", status, [], b"", True)]

    run(main())


def test_the_server_owns_framing_headers():
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        headers = [
            (b"Connection", b"close"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Server", b"mine"),
            (b"x-other", b"1"),
        ]
        await cycle.send({"type": "http.response.start", "status": HTTPStatus.ACCEPTED, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b""})
        assert sink.calls == [("head", 202, [(b"Server", b"mine"), (b"x-other", b"1")], b"", True)]
        assert cycle.keep_alive is False and cycle.replaces_defaults is True

        cycle, sink, _ = make_cycle()
        await cycle.send({**START, "headers": [(b"connection", b"keep-alive"), (b"date", b"then")]})
        assert cycle.keep_alive is True and cycle.replaces_defaults is True

    run(main())


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.response.start", "status": "200"},
        {"type": "http.response.start", "status": None},
        {"type": "http.response.start", "status": True},
        {"type": "http.response.start", "status": 101},
        {"type": "http.response.start", "status": 199},
        {"type": "http.response.start", "status": 600},
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b\r\nc: d")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"\x00")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"", b"b")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"a:", b"b")]},
        {"type": "http.response.start", "status": 200, "headers": [("a", "b")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b", b"c")]},
        {"type": "http.response.start", "status": 200, "headers": 5},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1_0")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b" 1")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"+1")]},
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"\xd9\xa1")]},
        {"type": "http.response.body", "body": b""},
        {"type": "http.response.trailers"},
        {"type": None},
        {},
        "not a dict",
    ],
    ids=repr,
)
def test_invalid_messages_raise_asgi_message_error(message):
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        with pytest.raises(ASGIMessageError):
            await cycle.send(message)
        assert cycle.resp_state is ResponseState.START
        assert sink.calls == []

    run(main())


def test_invalid_body_and_order():
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        await cycle.send(START)
        with pytest.raises(ASGIMessageError, match="'body' must be bytes"):
            await cycle.send({"type": "http.response.body", "body": "text"})
        with pytest.raises(ASGIMessageError, match=r"Expected ASGI message 'http\.response\.body'"):
            await cycle.send(START)
        await cycle.send({"type": "http.response.body", "body": bytearray(b"ok")})
        assert sink.calls[0][3] == b"ok"
        with pytest.raises(ASGIMessageError, match="after response already completed"):
            await cycle.send({"type": "http.response.body", "body": b""})

    run(main())


def test_content_length_mismatch():
    async def main() -> None:
        # Too long, nothing on the wire yet: a 500 replaces the response.
        cycle, sink, _ = make_cycle()
        await cycle.send({**START, "headers": [(b"content-length", b"2")]})
        with pytest.raises(ASGIMessageError, match="does not match its Content-Length"):
            await cycle.send({"type": "http.response.body", "body": b"abc"})
        assert [c[:2] for c in sink.calls] == [("head", 500)]
        assert cycle.keep_alive is False and cycle.status == 500

        # Too long after the head went out: the connection is aborted.
        cycle, sink, _ = make_cycle()
        await cycle.send({**START, "headers": [(b"content-length", b"2")]})
        await cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
        with pytest.raises(ASGIMessageError):
            await cycle.send({"type": "http.response.body", "body": b"bc", "more_body": True})
        assert sink.calls[-1] == ("abort",)

        # Too short at the end.
        cycle, sink, _ = make_cycle()
        await cycle.send({**START, "headers": [(b"content-length", b"5")]})
        await cycle.send({"type": "http.response.body", "body": b"ab", "more_body": True})
        with pytest.raises(ASGIMessageError, match="2 bytes"):
            await cycle.send({"type": "http.response.body", "body": b""})
        assert sink.calls[-1] == ("abort",)
        assert cycle.resp_state is ResponseState.DONE

    run(main())


# -- run_asgi: the app's outcome ----------------------------------------------------------


async def run_app(app: App, **kwargs: Any) -> tuple[RequestCycle, RecordingSink]:
    cycle, sink, _ = make_cycle(app, **kwargs)
    await cycle.run_asgi()
    return cycle, sink


def test_a_normal_app():
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        _cycle, sink = await run_app(app)
        assert sink.calls == [("head", 200, [(b"content-type", b"text/plain")], b"ok", True), ("done",)]

    run(main())


def test_exception_before_start_is_500(caplog):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    async def main() -> None:
        cycle, sink = await run_app(app)
        status, headers, body, end = sink.calls[0][1:]
        assert (status, body, end) == (500, b"Internal Server Error", True)
        assert (b"content-length", b"21") in headers
        assert cycle.keep_alive is False
        assert sink.calls[-1] == ("done",)

    run(main())
    assert "Exception in ASGI application" in caplog.text


def test_exception_while_the_head_is_held_back_is_500():
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        raise ValueError("boom")

    async def main() -> None:
        _cycle, sink = await run_app(app, method="HEAD")
        assert sink.calls[0][:2] == ("head", 500) and sink.calls[0][3] == b""  # HEAD: no body

    run(main())


def test_exception_after_the_head_went_out_aborts():
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("boom")

    async def main() -> None:
        _cycle, sink = await run_app(app)
        assert [c[0] for c in sink.calls] == ["head", "abort", "done"]

    run(main())


def test_exception_after_the_response_is_only_logged(caplog):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        await send({"type": "http.response.body", "body": b"ok"})
        raise ValueError("late")

    async def main() -> None:
        _cycle, sink = await run_app(app)
        assert [c[0] for c in sink.calls] == ["head", "done"]

    run(main())
    assert "late" in caplog.text


def test_app_returns_early(caplog):
    async def nothing(scope, receive, send):  # type: ignore[no-untyped-def]
        pass

    async def started(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)

    async def streamed(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        await send({"type": "http.response.body", "body": b"a", "more_body": True})

    async def main() -> None:
        _cycle, sink = await run_app(nothing)
        assert sink.calls[0][:2] == ("head", 500)
        _cycle, sink = await run_app(started)
        assert sink.calls[0][:2] == ("head", 500)
        _cycle, sink = await run_app(streamed)
        assert [c[0] for c in sink.calls] == ["head", "abort", "done"]

    run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("ASGI callable returned without starting response.") == 1
    assert messages.count("ASGI callable returned without completing response.") == 2


def test_app_returns_after_a_disconnect_quietly(caplog):
    async def main() -> None:
        async def app(scope, receive, send):  # type: ignore[no-untyped-def]
            await receive()
            assert (await receive())["type"] == "http.disconnect"

        cycle, sink, _ = make_cycle(app)
        task = asyncio.ensure_future(cycle.run_asgi())
        await settle()
        cycle.client_gone()
        await task
        assert [c[0] for c in sink.calls] == ["abort", "done"]  # no 500 to nobody

        # An OSError from send() after the client left is not an app error.
        async def app2(scope, receive, send):  # type: ignore[no-untyped-def]
            await receive()
            await receive()
            await send(START)

        cycle, sink, _ = make_cycle(app2)
        task = asyncio.ensure_future(cycle.run_asgi())
        await settle()
        cycle.client_gone()
        await task

    with caplog.at_level(logging.DEBUG, logger="monoceros"):
        run(main())
    assert [r for r in caplog.records if r.name.startswith("monoceros")] == []


def test_cancelled_app_aborts_and_cancellation_propagates():
    async def main() -> None:
        started = asyncio.Event()

        async def app(scope, receive, send):  # type: ignore[no-untyped-def]
            await send(START)
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            started.set()
            await asyncio.sleep(3600)

        cycle, sink, _ = make_cycle(app)
        task = asyncio.ensure_future(cycle.run_asgi())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [c[0] for c in sink.calls] == ["head", "abort", "done"]

    run(main())


def test_app_returning_a_value_is_reported(caplog):
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send(START)
        await send({"type": "http.response.body", "body": b""})
        return 42

    async def main() -> None:
        await run_app(app)

    run(main())
    assert "ASGI callable should return None, but returned '42'." in caplog.text


def test_header_shapes_and_the_validation_cache(monkeypatch):
    from monoceros.protocols import cycle as cycle_module

    monkeypatch.setattr(cycle_module, "_CHECKED", {})
    monkeypatch.setattr(cycle_module, "_CHECKED_MAX", 4)

    async def main() -> None:
        for _ in range(2):  # the second time from the cache
            cycle, sink, _ = make_cycle()
            headers = [
                [b"x-list", b"1"],
                (bytearray(b"x-ba"), b"2"),
                (b"Content-Length", b"0"),
                (b"x-t", b"3"),
            ]
            await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
            await cycle.send({"type": "http.response.body", "body": b""})
            sent = sink.calls[0][2]
            assert sent == [(b"x-list", b"1"), (b"x-ba", b"2"), (b"Content-Length", b"0"), (b"x-t", b"3")]
            assert all(type(n) is bytes and type(v) is bytes for n, v in sent)
        # Only plain tuples of bytes are remembered; the cache stays bounded.
        assert set(cycle_module._CHECKED) == {(b"Content-Length", b"0"), (b"x-t", b"3")}
        for i in range(10):
            cycle, sink, _ = make_cycle()
            await cycle.send({**START, "headers": [(b"x-n", b"%d" % i)]})
        assert len(cycle_module._CHECKED) <= 4
        # A bad header is never remembered: it fails every time.
        for _ in range(2):
            cycle, sink, _ = make_cycle()
            with pytest.raises(ASGIMessageError):
                await cycle.send({**START, "headers": [(b"x-bad", b"a\r\nb")]})
        assert (b"x-bad", b"a\r\nb") not in cycle_module._CHECKED

    run(main())


@pytest.mark.parametrize("kind", [tuple, iter])
def test_headers_need_not_be_a_list(kind):
    async def main() -> None:
        cycle, sink, _ = make_cycle()
        headers = kind([(b"content-length", b"10"), (b"x-a", b"b")])
        await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": b"0123456789"})
        assert sink.calls[0][:3] == ("head", 200, [(b"content-length", b"10"), (b"x-a", b"b")])

    asyncio.run(main())
