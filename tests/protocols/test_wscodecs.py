"""The two WebSocket codecs in memory: the same frames in, the same events out."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from monoceros.protocols.wscodecs import PONG, WS_CODECS, Close, Failed, resolve_ws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from wstools import close_payload, frame

IMPLS = ["websockets", "wsproto"]


@pytest.fixture(params=IMPLS)
def codec(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return WS_CODECS[request.param](1000, True)


def server_frame(data: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one unmasked server frame."""
    n = data[1] & 0x7F
    start = 2
    if n == 126:
        (n,) = struct.unpack("!H", data[2:4])
        start = 4
    return data[0] & 0x0F, data[start : start + n]


def test_messages_fragments_and_order(codec) -> None:  # type: ignore[no-untyped-def]
    data = (
        frame(1, b"one")
        + frame(2, b"\x00two")
        + frame(1, b"fr", fin=False)
        + frame(9, b"ping")  # a control frame between fragments
        + frame(0, "agé".encode())
        + frame(2, b"a", fin=False)
        + frame(0, b"b", fin=False)
        + frame(0, b"c")
    )
    events = []
    for i in range(len(data)):  # byte by byte: the same events
        events += codec.receive(data[i : i + 1])
    assert events == ["one", b"\x00two", "fragé", b"abc"]
    assert server_frame(codec.data_to_send()) == (10, b"ping")


def test_pong_close_and_reply(codec) -> None:  # type: ignore[no-untyped-def]
    events = codec.receive(frame(10, b"x") + frame(8, close_payload(4000, "bye")))
    assert events[0] is PONG
    assert isinstance(events[1], Close) and (events[1].code, events[1].reason) == (4000, "bye")
    assert server_frame(codec.data_to_send())[0] == 8
    assert codec.finished
    assert codec.close(1000, "") == b""  # already closed


def test_empty_close_is_1005(codec) -> None:  # type: ignore[no-untyped-def]
    (event,) = codec.receive(frame(8))
    assert (event.code, event.reason) == (1005, "")
    assert repr(event) == "Close(1005, '')"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(1, b"\xc3", fin=False) + frame(0, b"\x28"), 1007),
        (frame(2, b"x" * 1001), 1009),
        (frame(2, b"x" * 600, fin=False) + frame(0, b"x" * 600), 1009),
        (frame(1, b"x", rsv=2), 1002),
    ],
)
def test_failures(codec, data, code) -> None:  # type: ignore[no-untyped-def]
    events = codec.receive(data)
    assert isinstance(events[-1], Failed) and events[-1].code == code, events
    assert server_frame(codec.data_to_send()) [0] == 8
    assert codec.finished


def test_our_close_and_its_answer(codec) -> None:  # type: ignore[no-untyped-def]
    assert server_frame(codec.close(4001, "done")) == (8, close_payload(4001, "done"))
    (event,) = codec.receive(frame(8, close_payload(4001, "done")))
    assert event.code == 4001 and codec.finished


@pytest.mark.parametrize("size", [10, 200, 70000])
def test_send_sizes(codec, size) -> None:  # type: ignore[no-untyped-def]
    out = codec.send(b"y" * size)
    assert out[0] == 0x82 and out.endswith(b"y" * size)
    out = codec.send("z")
    assert out == b"\x81\x01z"
    assert server_frame(codec.ping(b"p")) == (9, b"p")


def test_negotiation(codec) -> None:  # type: ignore[no-untyped-def]
    assert codec.negotiate([b"x-unknown"]) is None
    answer = codec.negotiate([b"permessage-deflate; client_max_window_bits"])
    assert answer is not None and answer.startswith(b"permessage-deflate")
    # a compressed message now comes out compressed
    assert codec.send("hello" * 100)[0] == 0xC1


def test_negotiation_answers_are_well_formed() -> None:
    # websockets declines an offer it cannot parse; wsproto ignores what it
    # does not know: either way the answer is a valid header value or none.
    assert WS_CODECS["websockets"](None, True).negotiate([b'permessage-deflate; x="']) is None
    answer = WS_CODECS["wsproto"](None, True).negotiate([b'permessage-deflate; x="'])
    assert answer == b"permessage-deflate"
    for impl in IMPLS:
        assert WS_CODECS[impl](None, False).negotiate([b"permessage-deflate"]) is None


def test_resolve_ws(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_ws("none") is None
    assert resolve_ws("websockets-sansio") == "websockets"
    assert resolve_ws("wsproto") == "wsproto"
    assert resolve_ws("auto") == "websockets"
    monkeypatch.setitem(sys.modules, "websockets", None)
    assert resolve_ws("auto") == "wsproto"
    monkeypatch.setitem(sys.modules, "wsproto", None)
    assert resolve_ws("auto") is None
    assert repr(PONG) == "PONG"


def test_close_between_fragments_abandons_the_message(codec) -> None:  # type: ignore[no-untyped-def]
    # Autobahn 7.1.5: a fragment, a close, then the next fragment.
    events = codec.receive(frame(1, b"frag", fin=False) + frame(8, close_payload(1000)) + frame(0, b"ment"))
    assert len(events) == 1 and type(events[0]) is Close and events[0].code == 1000
    assert server_frame(codec.data_to_send()) == (8, close_payload(1000))
