"""The HPACK memo (monoceros/protocols/hpackcache.py) against the plain hpack
library: whatever the sequence of header lists, the peer decodes the same
thing, and repeated blocks are served from the memo."""

from __future__ import annotations

import pytest
from hpack import Decoder, Encoder, OversizedHeaderListError

from monoceros.protocols.hpackcache import MEMO_BLOCK, MEMO_SIZE, CachingDecoder, CachingEncoder


def lists() -> list[list[tuple[bytes, bytes]]]:
    base = [(b":status", b"200"), (b"server", b"monoceros"), (b"content-length", b"13")]
    out = []
    for i in range(40):
        date = b"Mon, 23 Nov 2026 14:%02d:00 GMT" % (i // 10)  # changes now and then
        out.append([*base, (b"date", date)])
        if i % 7 == 3:
            out.append([*base, (b"x-once", b"%d" % i)])  # adds to the table
    return out


def test_encoder_blocks_decode_like_the_library() -> None:
    ours, peer = CachingEncoder(), Decoder()
    plain = Encoder()
    hits = 0
    for headers in lists():
        block = ours.encode(list(headers))
        assert block == plain.encode(list(headers))  # byte for byte what hpack sends
        assert peer.decode(block, raw=True) == headers
        hits += bool(ours._memo)
    assert hits > 20


def test_encoder_table_size_change_goes_through_the_library() -> None:
    ours, peer = CachingEncoder(), Decoder()
    headers = [(b":status", b"200"), (b"server", b"monoceros")]
    peer.decode(ours.encode(list(headers)), raw=True)
    ours.header_table_size = 100
    block = ours.encode(list(headers))
    assert peer.decode(block, raw=True) == headers
    assert peer.header_table_size == 100
    # Not a list (h2 always passes one): no memo, the library's encoding.
    assert peer.decode(ours.encode(tuple(headers)), raw=True) == headers


def test_decoder_matches_the_library() -> None:
    client = Encoder()
    ours, plain = CachingDecoder(65536), Decoder()
    for headers in lists():
        block = client.encode(headers)
        assert ours.decode(block, raw=True) == plain.decode(block, raw=True) == headers
    assert 0 < len(ours._memo) <= MEMO_SIZE


def test_large_blocks_are_not_remembered() -> None:
    client = Encoder()
    ours = CachingDecoder(65536)
    big = [(b"x-big", b"b" * 2000)]
    block = client.encode(big)
    for _ in range(2):
        assert ours.decode(block, raw=True) == big
        block = client.encode(big)  # now an index
    assert ours.decode(client.encode([(b"x-big", b"c" * (MEMO_BLOCK + 1))]), raw=True)
    assert all(len(key[0]) <= MEMO_BLOCK for key in ours._memo)
    encoder = CachingEncoder()
    for _ in range(2):
        encoder.encode([(b"x-big", b"b" * 2000)], huffman=False)
    assert not encoder._memo or all(len(b) <= MEMO_BLOCK for b in encoder._memo.values())


def test_decoder_limit_still_holds() -> None:
    client = Encoder()
    ours = CachingDecoder(200)
    client_headers = [(b"x-big", b"b" * 100)]
    ours.decode(client.encode(client_headers), raw=True)
    with pytest.raises(OversizedHeaderListError):
        ours.decode(client.encode(client_headers * 3), raw=True)
