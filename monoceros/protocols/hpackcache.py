"""HPACK header blocks remembered while the compression tables stand still.

Theory of operation
-------------------
HPACK (RFC 7541) is stateful: how a header list encodes, and what a block
decodes to, depends on the dynamic table both ends keep.  But a server sees
the same few blocks over and over: a client repeating its request headers
sends byte-identical blocks once its headers are in the table, and our
responses repeat the same fields.  Encoding or decoding a block that only
*refers* to the tables (adds nothing) leaves them as they were, so for as
long as they stay unchanged the same input gives the same output.

:class:`CachingEncoder` and :class:`CachingDecoder` are the ``hpack``
library's own encoder and decoder with that memo in front: an entry is
stored only when the call left the table untouched, and the memo is
dropped whenever the table is no longer the one the entries were made
with (an entry was added or evicted, or the size changed).  The table's
identity is its newest entry (the object itself, kept alive here, so its
``id`` is never reused), its length and its size limit.  Everything else
(the first block of each kind, every Date change, table-size updates)
goes through the library unchanged.
"""

from __future__ import annotations

from typing import Any

from hpack import Decoder, Encoder

# Distinct blocks remembered per connection and direction, and the largest
# block remembered (memory stays small whatever a client sends).
MEMO_SIZE = 32
MEMO_BLOCK = 1024


def _table_state(table: Any) -> tuple[int, object, int]:
    entries = table.dynamic_entries
    return len(entries), entries[0] if entries else None, table.maxsize


def _same(a: tuple[int, object, int], b: tuple[int, object, int]) -> bool:
    return a[0] == b[0] and a[1] is b[1] and a[2] == b[2]


class CachingEncoder(Encoder):
    """An HPACK encoder that reuses blocks while its table is unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[tuple[Any, ...], bytes] = {}
        self._state = _table_state(self.header_table)

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self.header_table
        if type(headers) is not list or table.resized:
            return super().encode(headers, huffman)
        state = _table_state(table)
        if not _same(state, self._state):
            self._memo.clear()
            self._state = state
        key = tuple(headers)
        block = self._memo.get(key)
        if block is not None:
            return block
        block = super().encode(headers, huffman)
        if _same(_table_state(table), state) and len(self._memo) < MEMO_SIZE and len(block) <= MEMO_BLOCK:
            self._memo[key] = block
        return block


class CachingDecoder(Decoder):
    """An HPACK decoder that reuses decoded lists while its table is unchanged."""

    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size=max_header_list_size)
        self._memo: dict[tuple[bytes, bool], list[Any]] = {}
        self._state = _table_state(self.header_table)
        self._allowed = self.max_allowed_table_size

    def decode(self, data: bytes, raw: bool = False) -> Any:
        state = _table_state(self.header_table)
        if not _same(state, self._state) or self.max_allowed_table_size != self._allowed:
            self._memo.clear()
            self._state = state
            self._allowed = self.max_allowed_table_size
        if len(data) > MEMO_BLOCK:
            return super().decode(data, raw)
        key = (bytes(data), raw)
        memo = self._memo.get(key)
        if memo is not None:
            return list(memo)
        headers = super().decode(data, raw)
        if _same(_table_state(self.header_table), state) and len(self._memo) < MEMO_SIZE:
            self._memo[key] = list(headers)
        return headers


__all__ = ["MEMO_BLOCK", "MEMO_SIZE", "CachingDecoder", "CachingEncoder"]
