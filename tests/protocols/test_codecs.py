"""Both HTTP/1.1 codecs, in memory, on the same bytes: same events, same errors.

Every case of tests/strict_http_cases.py is fed to ``HttpToolsCodec`` and
``H11Codec`` whole, one byte at a time and in random splits; the event
sequences (with body pieces joined) must be identical, and match what the
case expects.  The end-to-end twin of this file is tests/e2e/test_malformed.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from strict_http_cases import BAD, GOOD, SMUGGLED, chunked, get, head

from monoceros.errors import RemoteProtocolError
from monoceros.protocols.codecs import (
    CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    Data,
    H11Codec,
    HttpToolsCodec,
    make_codec,
)
from monoceros.protocols.headers import Request, check_request

CODECS = [HttpToolsCodec, H11Codec]
MAX_HEAD = 16384
MAX_LINE = 8192


def pieces(data: bytes, split: str, seed: int = 0) -> list[bytes]:
    if split == "whole":
        return [data]
    if split == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 40)
        out.append(data[i : i + n])
        i += n
    return out


def run(codec_cls: Any, chunks: list[bytes], eof: bool = True, **limits: int) -> list[Any]:
    """Feed ``chunks`` like HTTP11Protocol would (start_next_cycle after each
    keep-alive message) and return the events: Request heads as tuples, body
    pieces joined, errors as ("error", status)."""
    codec = codec_cls(limits.get("max_head", MAX_HEAD), limits.get("max_line", MAX_LINE))
    out: list[Any] = []
    keep_alive = True

    def pump() -> bool:
        nonlocal keep_alive
        while True:
            try:
                event = codec.next_event()
            except RemoteProtocolError as exc:
                out.append(("error", exc.status_hint))
                return True
            if event is NEED_DATA:
                return False
            if event is PAUSED:
                return False
            if isinstance(event, Request):
                keep_alive = event.keep_alive
                out.append(("request", event.method, event.target, event.http_version, tuple(event.headers)))
            elif isinstance(event, Data):
                if out and out[-1][0] == "data":
                    out[-1] = ("data", out[-1][1] + event.data)
                else:
                    out.append(("data", event.data))
            elif event is END_OF_MESSAGE:
                out.append("end")
                if not keep_alive:
                    return True  # the connection closes after the response
                codec.start_next_cycle()
            else:
                assert event is CLOSED
                out.append("closed")
                return True

    for chunk in chunks:
        codec.receive_data(chunk)
        if pump():
            return out
    if eof:
        codec.receive_data(b"")
        pump()
    return out


def both(data: bytes, splits: tuple[str, ...] = ("whole", "bytes", "random"), **kw: Any) -> list[Any]:
    """The events of both codecs for every split; assert they are all equal."""
    results = {}
    for codec in CODECS:
        for split in splits:
            results[(codec.__name__, split)] = run(codec, pieces(data, split), **kw)
    first = next(iter(results.values()))
    for key, events in results.items():
        assert events == first, f"{key} differs:\n{events}\nvs\n{first}"
    return first


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_malformed_request_is_refused_alike(case):
    events = both(case.data + SMUGGLED)
    assert events[-1] == ("error", case.status)
    requests = [e for e in events if e[0] == "request"]
    if case.in_body:
        assert len(requests) == 1 and requests[0][2] == b"/"  # the head was fine
    else:
        assert requests == []
    assert all(e[2] != b"/smuggled" for e in requests)


@pytest.mark.parametrize("case", GOOD, ids=[c.id for c in GOOD])
def test_good_request_is_served_alike(case):
    events = both(case.data)
    seen = []
    for event in events:
        if event == "end":
            continue
        if event[0] == "request":
            seen.append([event[1], event[2], b""])
        elif event[0] == "data":
            seen[-1][2] = event[1]
    assert tuple(tuple(s) for s in seen) == case.requests
    assert events[-1] == "closed" or (events[-1] == "end" and b"HTTP/1.0" in case.data)


def test_trailers_do_not_reach_the_request_headers():
    events = both(chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"))
    assert events[0][4] == ((b"host", b"example.com"), (b"transfer-encoding", b"chunked"))


def test_trailers_do_not_reach_the_next_request():
    # Trailer fields (one ending in whitespace) then a pipelined GET: its head
    # is its own, nothing of the trailers, nothing stripped that was not there.
    events = both(chunked(b"3\r\nabc\r\n0\r\nX-T: 1 \r\n\r\n") + get(b"X-Next: n"))
    heads = [e for e in events if e[0] == "request"]
    assert len(heads) == 2
    assert heads[1][4] == ((b"host", b"example.com"), (b"x-next", b"n"))


def test_trailing_whitespace_is_stripped_from_values():
    events = both(get(b"X-A: \t v v \t", b"X-B:", b"X-C: c"))
    assert events[0][4] == ((b"host", b"example.com"), (b"x-a", b"v v"), (b"x-b", b""), (b"x-c", b"c"))


def test_field_names_are_lowercased_and_duplicates_kept():
    events = both(get(b"X-Dup: 1", b"x-DUP: 2", b"Cookie: a=b"))
    assert events[0][4] == (
        (b"host", b"example.com"),
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
        (b"cookie", b"a=b"),
    )


# -- limits -------------------------------------------------------------------------------
def head_of_size(size: int, line: int = 0) -> bytes:
    """A valid GET head of exactly ``size`` bytes whose request line is ``line`` bytes long."""
    first = b"GET /" + b"a" * (line - 14) + b" HTTP/1.1" if line else b"GET / HTTP/1.1"
    start = first + b"\r\n" + HOST_LINE
    data = start + b"X-Pad: " + b"p" * (size - len(start) - len(b"X-Pad: \r\n\r\n")) + b"\r\n\r\n"
    assert len(data) == size and len(first) == (line or 14)
    return data


HOST_LINE = b"Host: example.com\r\n"


@pytest.mark.parametrize(
    ("size", "line", "status"),
    [
        (MAX_HEAD, 0, None),
        (MAX_HEAD + 1, 0, 431),
        (9000, MAX_LINE, None),
        (9000, MAX_LINE + 1, 414),
        (MAX_HEAD, MAX_LINE, None),
        (MAX_HEAD + 1, MAX_LINE + 1, 414),  # the line is over first
    ],
)
def test_head_limits_are_exact_on_both_codecs(size, line, status):
    events = both(head_of_size(size, line), splits=("whole", "random"))
    if status is None:
        assert events[0][0] == "request" and events[-1] == "closed"
    else:
        assert events == [("error", status)]


def test_a_smaller_head_limit_applies_to_both_codecs():
    assert both(head_of_size(1024), max_head=1024)[0][0] == "request"
    assert both(head_of_size(1025), max_head=1024) == [("error", 431)]
    # a long line under the line limit but over the head limit: 431
    assert both(head_of_size(2000, 1500), max_head=1024) == [("error", 431)]


@pytest.mark.parametrize("codec_cls", CODECS)
def test_endless_head_fails_at_the_limit_when_trickled(codec_cls):
    """One byte at a time, a head that never ends is refused exactly when it
    passes the limit, so at most max_head bytes are ever buffered."""
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(b"GET / HTTP/1.1\r\n")
    fed = 16
    while True:
        codec.receive_data(b"x")
        fed += 1
        try:
            assert codec.next_event() is NEED_DATA
        except RemoteProtocolError as exc:
            assert exc.status_hint == 431
            break
        assert len(codec.trailing_data()) == fed  # nothing but the partial head is held
    assert fed == MAX_HEAD + 1


@pytest.mark.parametrize("codec_cls", CODECS)
def test_endless_request_line_fails_at_the_line_limit(codec_cls):
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(b"GET /")
    fed = 5
    with pytest.raises(RemoteProtocolError) as info:
        while True:
            codec.receive_data(b"a" * 100)
            fed += 100
            assert codec.next_event() is NEED_DATA
    assert info.value.status_hint == 414
    assert MAX_LINE < fed <= MAX_LINE + 100


@pytest.mark.parametrize(
    ("data", "status"),
    [
        # whichever fault the byte stream reaches first decides, however it is split
        (b"GET /a\rb" + b"a" * 9000, 400),  # bare CR before the line limit
        (b"GET /" + b"a" * 9000 + b"\rb", 414),  # line limit before the bare CR
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 10000 + b"\nY: " + b"a" * 10000, 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 17000 + b"\nY: b", 431),
    ],
)
def test_earliest_fault_wins_whatever_the_split(data, status):
    assert both(data, eof=False) == [("error", status)]


def test_trailer_section_over_the_limit_is_431():
    big = chunked(b"3\r\nabc\r\n0\r\nX-T: " + b"t" * 40000 + b"\r\n\r\n")
    events = both(big, splits=("whole", "random"))
    assert events[-1] == ("error", 431)
    many = chunked(b"3\r\nabc\r\n0\r\n" + b"X-Trailer: 0123456789abcdef\r\n" * 1000 + b"\r\n")
    assert both(many, splits=("whole", "random"))[-1] == ("error", 431)


def test_long_chunk_extension_still_incomplete_is_431_when_trickled():
    data = chunked(b"3;a=" + b"b" * 40000 + b"\r\nabc\r\n0\r\n\r\n")
    assert both(data, splits=("bytes", "random"))[-1] == ("error", 431)


def test_trailers_under_the_limit_are_fine():
    data = chunked(b"3\r\nabc\r\n0\r\n" + b"X-Trailer: 0123456789abcdef\r\n" * 100 + b"\r\n")
    assert both(data)[1:] == [("data", b"abc"), "end", "closed"]


# -- connection-level behaviour ------------------------------------------------------------
def test_nothing_after_connection_close_is_parsed():
    events = both(get(b"Connection: close") + b"garbage that is never parsed")
    assert next(e for e in events if e[0] == "request")[2] == b"/"
    assert events[-1] == "end" and ("error", 400) not in events


def test_nothing_after_an_http_1_0_request_is_parsed():
    events = both(head(b"GET /a HTTP/1.0") + head(b"GET /b HTTP/1.0"))
    assert [e[2] for e in events if e[0] == "request"] == [b"/a"]


def test_http_1_0_keep_alive_goes_on():
    events = both(head(b"GET /a HTTP/1.0", b"Connection: keep-alive") + head(b"GET /b HTTP/1.0"))
    assert [e[2] for e in events if e[0] == "request"] == [b"/a", b"/b"]


def test_a_trailer_saying_close_does_not_stop_the_connection():
    # llhttp would treat the connection as closing; the codec gives it a new parser
    data = chunked(b"3\r\nabc\r\n0\r\nConnection: close\r\n\r\n") + get(line=b"GET /next HTTP/1.1")
    assert [e[2] for e in both(data) if e[0] == "request"] == [b"/", b"/next"]


def test_eof_inside_a_head_or_body_is_400_and_between_requests_a_close():
    assert both(b"GET / HTTP/1.1\r\nHost: a\r\n") == [("error", 400)]
    assert both(head(b"POST / HTTP/1.1", b"Host: a", b"Content-Length: 5") + b"ab")[-1] == ("error", 400)
    assert both(b"") == ["closed"]
    assert both(b"\r\n\r\n") == ["closed"]


@pytest.mark.parametrize("codec_cls", CODECS)
def test_pipelined_request_waits_for_start_next_cycle(codec_cls):
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(get(line=b"GET /1 HTTP/1.1") + get(line=b"GET /2 HTTP/1.1"))
    first = codec.next_event()
    assert isinstance(first, Request) and first.target == b"/1"
    assert codec.next_event() is END_OF_MESSAGE
    assert codec.next_event() is PAUSED  # /2 is buffered, not parsed
    assert repr(PAUSED) == "PAUSED"
    assert codec.trailing_data().startswith(b"GET /2")
    codec.start_next_cycle()
    second = codec.next_event()
    assert isinstance(second, Request) and second.target == b"/2"
    assert codec.next_event() is END_OF_MESSAGE
    assert codec.next_event() is NEED_DATA  # nothing buffered: keep reading


@pytest.mark.parametrize("codec_cls", CODECS)
def test_error_stays_the_answer(codec_cls):
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(b"GET / HTTP/1.1\nHost: a\n\n")
    for _ in range(2):
        with pytest.raises(RemoteProtocolError):
            codec.next_event()
    codec.receive_data(get())  # ignored from now on
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_make_codec_names():
    assert isinstance(make_codec("httptools", MAX_HEAD, MAX_LINE), HttpToolsCodec)
    assert isinstance(make_codec("h11", MAX_HEAD, MAX_LINE), H11Codec)


@pytest.mark.parametrize("codec_cls", CODECS)
def test_bytes_after_a_close_request_are_dropped(codec_cls):
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(get(b"Connection: close"))
    req = codec.next_event()
    assert isinstance(req, Request) and not req.keep_alive
    assert repr(req) == "<Request b'GET' b'/' HTTP/1.1>"
    assert codec.next_event() is END_OF_MESSAGE
    codec.receive_data(SMUGGLED)  # after the message: never parsed, not even kept
    assert codec.next_event() is NEED_DATA and codec.trailing_data() == b""
    codec.start_next_cycle()  # (the connection would close instead) nothing more comes
    assert codec.next_event() is CLOSED and codec.next_event() is CLOSED


@pytest.mark.parametrize("codec_cls", CODECS)
def test_closed_stays_closed(codec_cls):
    codec = codec_cls(MAX_HEAD, MAX_LINE)
    codec.receive_data(b"")
    assert codec.next_event() is CLOSED
    codec.receive_data(get())
    assert codec.next_event() is CLOSED
    codec.start_next_cycle()
    assert codec.next_event() is CLOSED


def test_check_request_bounds_the_target_itself():
    # the codecs bound the whole request line first; check_request holds its own line
    with pytest.raises(RemoteProtocolError) as info:
        check_request(Request(b"GET", b"/" + b"a" * 100, b"1.1", [(b"host", b"a")]), 100)
    assert info.value.status_hint == 414


def test_a_head_llhttp_would_sit_on_is_refused_at_once():
    # llhttp waits for the rest of the HTTP/2 preface after "PRI ... \r\n\r\n"
    assert both(b"PRI * HTTP/2.0\r\n\r\n", eof=False) == [("error", 400)]
    assert both(b"PRI / HTTP/1.1\r\n\r\n", eof=False) == [("error", 400)]


def test_a_target_found_valid_is_remembered_within_bounds():
    from monoceros.protocols import headers

    def check(target: bytes) -> None:
        check_request(Request(b"GET", target, b"1.1", [(b"host", b"a")]), 8192)

    headers._GOOD_TARGETS.clear()
    check(b"/remembered?q=1")
    assert b"/remembered?q=1" in headers._GOOD_TARGETS
    check(b"/" + b"a" * headers._GOOD_LEN)  # too long to keep
    assert len(headers._GOOD_TARGETS) == 1
    with pytest.raises(RemoteProtocolError):  # a bad one is never kept
        check(b"/a b")
    assert b"/a b" not in headers._GOOD_TARGETS
    for i in range(headers._GOOD_MAX):
        check(b"/%d" % i)
    assert len(headers._GOOD_TARGETS) <= headers._GOOD_MAX
    check(b"/remembered?q=1")  # still valid after the set was cleared
