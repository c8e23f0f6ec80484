"""Read one CloudTrail log object: `{"Records": [...]}`, gzipped or not, from any byte stream.

Decompression is streamed and capped: an object that inflates beyond `max_bytes` (or whose
compressed size does) fails with `ObjectError("too_large")` as soon as it passes the cap, so a
gzip bomb costs the cap and a piece, whatever it inflates to. The inflated bytes are held once
(a growing buffer, never joined into a second copy), and checked as UTF-8 a step at a time.

Under the cap, `read_compact` bounds what decoding builds too, whatever the object holds
(`_Limits`): at most one record per 256 bytes of the cap; no field it reads builds more than
one small object (an array there sends its record to orjson); at most a 32nd of the cap decoded
whole by orjson (an object laid out otherwise, or such records), as any JSON can take ~30 times
its size so; and the process's resident size grows by at most 1.75 times the cap while it
decodes, checked after each ~1 MiB part (strings: up to 4 bytes a character). Its peak is then
about the interpreter + 1.75 times the cap + one part: at 1,024 MB (a 256 MiB cap) under
500 MiB whatever the object (tests/test_bomb_memory.py). An object past one of these fails
alone as `too_large`, the message naming the limit and what to raise. `read_records`, the
reference, holds the cap and decodes it whole (orjson: up to ~30 times it): it is not what the
function or the CLI run.
Every failure is an `ObjectError` whose `reason` is a metric label and whose message says what
was wrong with which object, so one bad object never takes down the batch it came in. Nor does
one bad record sink its object: a record whose strings are not valid (not UTF-8, a lone
surrogate escape, a control character) comes back as an `InvalidRecord`, which detection skips
and counts (`records_skipped.invalid_utf8`, `records_skipped.invalid_string`), and the others
are read.

Two readers, one result: `read_records` gives every record whole (dicts, via orjson): the
reference. `read_compact` gives each record reduced to the fields detection reads
(`CompactRecord`, via msgspec, which skips the rest without building it), decoding the Records
array a few hundred records at a time as it inflates; `consume_compact` hands those records to
a consumer (extraction) as they are decoded, so that they are never all held: it is what
detection runs (see docs/benchmarks.md). An object laid out otherwise is decoded whole, and
one that msgspec cannot decode as orjson would goes to the reference decoding, so both readers
accept and reject the same objects, for the same reasons (one exception: docs/benchmarks.md).
"""

from __future__ import annotations

import codecs
import gc
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import msgspec
import orjson
from isal import isal_zlib

from ..domain.events import CompactRecord, InvalidRecord
from ..ports import ByteStream

T = TypeVar("T")

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB decompressed
_CHUNK = 1 << 20  # read from the stream
_PIECE = 1 << 20  # inflated at a time: what `read_compact` holds besides its records
# A record without end in this many inflated bytes: `read_compact` decodes the object whole
# rather than hold it beside the compressed bytes it keeps (twice a plain object).
_HELD_MAX = 4 << 20
_UTF8_STEP = 1 << 16  # checked as UTF-8 at a time: decoding a step takes up to 4 times it
_GZIP_MAGIC = b"\x1f\x8b"
# What decoding may build, from the cap (see `_Limits`). CloudTrail's records are 500 bytes
# and more: an object of smaller ones is not CloudTrail's.
_MIN_RECORD_BYTES = 256
_WHOLE_DIVISOR = 32  # decoded whole (orjson, or msgspec at large): a 32nd of the cap at most
_MEMORY_NUM, _MEMORY_DEN = 7, 4  # the memory a read may take: 1.75 times the cap
# Floors, for small caps: the resident size moves by pages and allocator arenas.
_MIN_RECORDS, _MIN_WHOLE, _MIN_MEMORY = 4096, 1 << 20, 64 << 20
_GZIP_WBITS = 16 + 15

# isal's stub declares `error` an instance; it is the exception class, as zlib's is.
_INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)


class ObjectError(Exception):
    """A log object that cannot be read; `reason` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EmptyObject(Exception):
    """A zero-byte object: nothing to read, and not an error (CloudTrail never writes one)."""


def read_bytes(stream: ByteStream, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The object's decompressed bytes, inflating gzip (all members) as a stream, capped."""
    return bytes(_read_all(stream, max_bytes))


def _read_all(stream: ByteStream, max_bytes: int) -> bytearray:
    """The object's decompressed bytes in one buffer, grown a piece at a time: about the cap at
    most (a join would hold the pieces and their copy, twice the object)."""
    return _gather(bytearray(), _pieces(stream, max_bytes))


def _gather(buf: bytearray, pieces: Iterator[bytes]) -> bytearray:
    for piece in pieces:
        buf += piece
    return buf


def _pieces(stream: ByteStream, max_bytes: int) -> Iterator[bytes]:
    """The object's decompressed bytes, a piece at a time; `EmptyObject` for a zero-byte one."""
    first = _read(stream)
    # A stream may return fewer bytes than asked for: get the whole magic number before
    # deciding whether this is gzip.
    while 0 < len(first) < len(_GZIP_MAGIC):
        more = _read(stream)
        if not more:
            break
        first += more
    if not first:
        raise EmptyObject
    if first.startswith(_GZIP_MAGIC):
        yield from _inflate(first, stream, max_bytes)
        return
    size, chunk = 0, first
    while chunk:
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        yield chunk
        chunk = _read(stream)


def _read(stream: ByteStream) -> bytes:
    try:
        return stream.read(_CHUNK)
    except OSError as exc:
        raise ObjectError("read_error", f"cannot read object: {exc}") from exc


def _too_large(max_bytes: int, compressed: bool = False) -> ObjectError:
    what = "is beyond" if compressed else "inflates beyond"
    even = " even compressed" if compressed else ""
    return ObjectError(
        "too_large", f"object {what} the {max_bytes:,}-byte cap (max_object_bytes){even}"
    )


def _inflate(first: bytes, stream: ByteStream, max_bytes: int) -> Iterator[bytes]:
    # ISA-L inflates the same deflate streams as zlib, about twice as fast (docs/benchmarks.md).
    size = 0
    compressed = 0
    inflater: Any = None  # None between gzip members
    pending = first
    while pending:
        # Deflate never makes data much larger, so more compressed bytes than the cap are
        # padding or empty members: refused too, as `read_compact` keeps what it reads.
        compressed += len(pending)
        if compressed > max_bytes:
            raise _too_large(max_bytes, compressed=True)
        try:
            while pending:
                if inflater is None:
                    if not pending.strip(b"\x00"):
                        break  # zero padding after the last member, as gzip(1) allows
                    inflater = isal_zlib.decompressobj(wbits=_GZIP_WBITS)
                # max_length bounds each step, so a bomb is stopped at the cap, not after it.
                piece = inflater.decompress(pending, min(_PIECE, max_bytes + 1 - size))
                size += len(piece)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                if piece:
                    yield piece
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    # Concatenated gzip members are inflated too, as gzip(1) would.
                    pending = inflater.unused_data + pending
                    inflater = None
        except _INFLATE_ERROR as exc:
            raise ObjectError("corrupt_gzip", f"corrupt gzip data: {exc}") from exc
        pending = _read(stream)
    if inflater is not None:
        raise ObjectError("corrupt_gzip", "truncated gzip stream (no end-of-stream marker)")


def parse_records(data: bytes | bytearray) -> list[Any]:
    """The `Records` list of a decompressed log object."""
    with gc_paused():
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            # A string of a record at fault: that record is an InvalidRecord, the rest are read.
            records = _isolated(data, _reference_record)
            if records is None:
                raise ObjectError("invalid_json", f"invalid JSON: {exc}") from exc
            return records
    if not isinstance(doc, dict) or "Records" not in doc:
        kind = type(doc).__name__
        raise ObjectError(
            "no_records",
            f"not a CloudTrail log object: top level is a {kind} without a 'Records' key",
        )
    records = doc["Records"]
    if not isinstance(records, list):
        raise ObjectError("bad_records", f"'Records' is a {type(records).__name__}, not a list")
    return records


def read_records(stream: ByteStream, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Any]:
    """Read and parse one log object from a byte stream: every record whole, as a dict."""
    return parse_records(_read_all(stream, max_bytes))


# -- the compact reader --------------------------------------------------------------------------

# CloudTrail writes `{"Records":[{"eventVersion":...},{"eventVersion":...}]}` with no spaces,
# every record opening with eventVersion.
_HEAD = b'{"Records":['
_NEXT_RECORD = b'},{"eventVersion":'
_JSON_SPACE = b" \t\n\r"


class _Log(msgspec.Struct, gc=False):
    Records: list[CompactRecord]


# Invalid JSON, or JSON that is not a list of CompactRecords, invalid UTF-8 (see `_check_utf8`),
# nesting deeper than msgspec goes: the reference decoding says what it makes of it.
_NOT_COMPACT = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_decode_records = msgspec.json.Decoder(list[CompactRecord]).decode
_decode_record = msgspec.json.Decoder(CompactRecord).decode
_decode_log = msgspec.json.Decoder(_Log).decode


def read_compact(stream: ByteStream, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Any]:
    """Read one log object as `read_records` does, each record reduced to a `CompactRecord`.

    Raises what `read_records` raises for the same object. An object that msgspec cannot give
    as CompactRecords (a record that is not an object, say) comes back as `read_records` gives
    it, so callers take both kinds (`Detector.extract` does).
    """
    return consume_compact(stream, list, max_bytes)


def consume_compact(
    stream: ByteStream, consume: Callable[[Iterator[Any]], T], max_bytes: int = DEFAULT_MAX_BYTES
) -> T:
    """`consume` over the records `read_compact` gives, as they are decoded, a part at a time,
    so that they are never all held at once: an 80 MB object's extraction peaks at 35 MB of
    resident memory instead of 133 MB, and takes 9 % less time in a fresh process, which has
    that much less memory to fault in (docs/benchmarks.md, section 6).

    Raises what `read_compact` raises, from `consume`'s iteration. An object that turns out to
    need decoding whole after some of its records were given (a record without end in 4 MiB, an
    end that is not CloudTrail's) is given again, whole, to a second call of `consume`, whose
    result is returned: `consume` must keep nothing of a call it did not finish
    (`Extractor.extract` keeps only caches)."""
    recorded = _Recorded(stream)
    limits = _Limits(max_bytes)
    with gc_paused():
        try:
            return consume(_compact_records(_pieces(recorded, max_bytes), limits))
        except _DecodeWhole:
            pass
        # Laid out otherwise, a part that did not decode, or a record too long to hold beside
        # what was read: inflate again what was read, then the rest, and decode it whole (its
        # errors come first, as in read_records), if it is small enough to.
        whole = min(max_bytes, limits.whole_max)
        try:
            data = _read_all(recorded.replay(), whole)
        except ObjectError as exc:
            if exc.reason == "too_large" and whole < max_bytes:
                raise limits.too_large_whole() from None
            raise
        return consume(iter(_decode_whole(data, limits)))


class _DecodeWhole(Exception):
    """Raised by `_compact_records`: the object is to be decoded whole after all."""


class _Limits:
    """What one `read_compact` may build, derived from its cap `max_bytes`, so that what an
    object holds under the cap cannot take more memory than the cap allows for either.

    - Records: at most one per `_MIN_RECORD_BYTES` of the cap. Each is a CompactRecord (a few
      hundred bytes of structs, whatever its JSON), so tiny records are refused early; a part is
      refused before it is decoded when it has more `{` than records are left (every record
      has one), so no one part builds more than that.
    - Decoded whole (an object laid out otherwise, or what msgspec cannot decode as
      CompactRecords, decoded by orjson a record at a time): at most a 32nd of the cap in all.
      Any JSON decoded so can take up to ~30 times its size (`[[],[],...]`, `{},{},...`).
    - Memory: the process's resident size may grow by at most 1.75 times the cap while the
      object is decoded, checked after each part (a CloudTrail object takes about 1.2 times
      its inflated size). This is what strings cost (4 bytes a character once one needs it),
      whatever the counts; where /proc/self/statm is missing it is not checked.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_records = max(max_bytes // _MIN_RECORD_BYTES, _MIN_RECORDS)
        self.whole_max = max(max_bytes // _WHOLE_DIVISOR, _MIN_WHOLE)
        self.memory_max = max(max_bytes * _MEMORY_NUM // _MEMORY_DEN, _MIN_MEMORY)
        self.whole = 0  # bytes decoded whole so far
        self._start = _resident()

    def before_part(self, part: bytes | bytearray, records: int) -> None:
        """Refuse a part that could hold more records than are left."""
        left = self.max_records - records
        # A record takes 3 bytes at least (`{},`): the `{` are counted (a fifth of the
        # decoding's time) only when there could be too many.
        if len(part) // 3 > left and part.count(b"{") > left:
            raise self._too_many()

    def after_part(self, records: int) -> None:
        if records > self.max_records:
            raise self._too_many()
        if _resident() - self._start > self.memory_max:
            raise self._error(
                f"took more than {self.memory_max:,} bytes of memory to decode, 1.75 times"
            )

    def decode_whole(self, size: int) -> None:
        """Count `size` bytes about to be decoded whole; refuse them beyond `whole_max`."""
        self.whole += size
        if self.whole > self.whole_max:
            raise self._error(
                "has records msgspec cannot decode compactly (an array in a field detection "
                "reads, a record that is not an object) beyond "
                f"{self.whole_max:,} bytes, the most decoded whole: a 32nd of"
            )

    def too_large_whole(self) -> ObjectError:
        return self._error(
            'is not laid out as CloudTrail writes it (`{"Records":[{"eventVersion":...`, '
            f"compact) and beyond {self.whole_max:,} bytes, the most decoded whole: a 32nd of"
        )

    def _too_many(self) -> ObjectError:
        return self._error(
            f"holds more than {self.max_records:,} records, one per {_MIN_RECORD_BYTES} bytes of"
        )

    def _error(self, what: str) -> ObjectError:
        return ObjectError(
            "too_large",
            f"object {what} the {self.max_bytes:,}-byte cap (max_object_bytes); raise the cap "
            "(MAX_OBJECT_BYTES or [reader] max_object_bytes; in Lambda, or the function's "
            "memory: the cap defaults to a quarter of it) to read it",
        )


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# (pid, fd) of /proc/self/statm, opened once per process: opening it for every read cost 14 µs,
# a fifth of reading a small object; reading it again at offset 0 gives fresh figures. A forked
# child inherits the fd but must not use it (it would read its parent's): the pid tells.
_statm: tuple[int, int] = (0, -1)


def _resident() -> int:
    """The process's resident size in bytes, or 0 where /proc/self/statm is missing."""
    global _statm
    pid, fd = _statm
    try:
        if pid != os.getpid():
            pid = os.getpid()
            _statm = (pid, -1)  # tried once per process
            fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
            _statm = (pid, fd)
        if fd < 0:
            return 0
        return int(os.pread(fd, 64, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _Recorded:
    """A stream that keeps what was read from it: the compressed object, about a tenth of the
    inflated one and never more than the cap, is what `read_compact` holds to decode it again
    should it have to."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._chunks: list[bytes] = []

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        self._chunks.append(chunk)
        return chunk

    def replay(self) -> _Replayed:
        chunks, self._chunks = self._chunks, []
        return _Replayed(chunks, self._stream)


class _Replayed:
    """What `_Recorded` kept, then the rest of its stream. Each kept chunk is let go once read
    again, so the inflated buffer grows as they go: never both whole."""

    def __init__(self, chunks: list[bytes], rest: ByteStream) -> None:
        chunks.reverse()
        self._chunks = chunks
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        return self._chunks.pop() if self._chunks else self._rest.read(size)


def _compact_records(pieces: Iterator[bytes], limits: _Limits) -> Iterator[Any]:
    """The records, decoded a part at a time; `_DecodeWhole` when the object is to be decoded
    whole."""
    first = b""
    for piece in pieces:
        first += piece
        if len(first) >= len(_HEAD):
            break
    if not first.startswith(_HEAD):
        raise _DecodeWhole  # not laid out as CloudTrail writes it
    records = 0
    # Inflated, not decoded yet: `[` and the bytes from a record start on, in one buffer that
    # becomes the part to decode.
    held = bytearray(b"[")
    held += memoryview(first)[len(_HEAD) :]
    for piece in pieces:
        # Decode up to the last record start in this piece: each part is `[` + whole records
        # + `]`. A cut inside a string or a nested object makes that part invalid JSON (the
        # brackets cannot balance), so a part that decodes was cut between records.
        cut = piece.rfind(_NEXT_RECORD)
        if cut < 0:
            held += piece
            if len(held) > _HELD_MAX:
                raise _DecodeWhole
            continue
        held += memoryview(piece)[: cut + 1]
        held += b"]"
        decoded = _decode_part(held, limits, records)
        if decoded is None:
            # Cut inside a record (an object in it opening with eventVersion), or a record
            # wrong beyond its strings: hold on to the part, and try again at the next cut.
            del held[-1]
            held += memoryview(piece)[cut + 1 :]
            if len(held) > _HELD_MAX:
                raise _DecodeWhole
            continue
        records += len(decoded)
        limits.after_part(records)
        held = bytearray(b"[")
        held += memoryview(piece)[cut + 2 :]
        yield from decoded
    # What is held is the last records and the closing `]}`.
    end = _rstrip_len(held)
    if end < 3 or held[end - 2 : end] != b"]}":
        raise _DecodeWhole
    del held[end - 1 :]  # the `}`: the part ends with the array's own `]`
    decoded = _decode_part(held, limits, records)
    if decoded is None:
        raise _DecodeWhole
    limits.after_part(records + len(decoded))
    yield from decoded


def _rstrip_len(buf: bytearray) -> int:
    """The length of `buf` without its trailing JSON whitespace, found without copying it."""
    end = len(buf)
    view = memoryview(buf)
    while end:
        start = max(0, end - _PIECE)
        kept = len(bytes(view[start:end]).rstrip(_JSON_SPACE))
        if kept:
            return start + kept
        end = start
    return 0


def _decode_part(part: bytes | bytearray, limits: _Limits, records: int) -> list[Any] | None:
    limits.before_part(part, records)
    try:
        _check_utf8(part)
        return _decode_records(part)
    except _NOT_COMPACT:
        return _isolated_part(part, limits)


def _decode_whole(data: bytes | bytearray, limits: _Limits) -> list[Any]:
    """An object laid out otherwise: msgspec on the whole of it, else the reference decoding."""
    limits.before_part(data, 0)
    try:
        _check_utf8(data)
        records = list(_decode_log(data).Records)
    except _NOT_COMPACT:
        # Not a list of objects, or not JSON: the reference says which, with its own message.
        limits.decode_whole(len(data))
        records = parse_records(data)
    limits.after_part(len(records))
    return records


def _check_utf8(data: bytes | bytearray) -> None:
    """Raise UnicodeDecodeError unless `data` is UTF-8, decoding a piece at a time (the whole of
    it as a str could take four times its size)."""
    # msgspec does not validate the UTF-8 of strings it skips; orjson rejects the whole object.
    if data.isascii():
        return
    view = memoryview(data)
    start, end = 0, len(view)
    while start < end:
        # A step ending inside a character leaves it to the next step.
        stop = min(start + _UTF8_STEP, end)
        start += codecs.utf_8_decode(view[start:stop], "strict", stop == end)[1]


# -- one bad record, not a bad object -------------------------------------------------------------
#
# A record whose strings are not valid (bytes that are not UTF-8, a lone surrogate escape, a
# control character, a bad escape) fails the decoding of its whole object. When that happens,
# the Records array is split into its records, each decoded on its own, and such a record
# becomes an `InvalidRecord` (detection counts it in records_skipped.<reason>). Anything else
# wrong (a number out of range, nesting too deep, the structure itself) is the object's: both
# readers then refuse it as before. Only failed decodings come here.

# A JSON string (any byte inside; escapes taken whole), a bracket, a brace, a comma, or a quote
# that opens a string never closed.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[][{},]|"', re.DOTALL)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_SPACE = re.compile(rb"[^ \t\n\r]")
_CLOSING = {ord("["): ord("]"), ord("{"): ord("}")}
_QUOTE, _COMMA, _COLON, _ARRAY, _OBJECT = (ord(c) for c in '",:[{')
_RECORDS_KEY = b'"Records"'

Span = tuple[int, int]


class _NotIsolable(Exception):
    """A record is wrong in more than its strings: its object is, as a whole."""


def _items(data: bytes | bytearray, open_at: int) -> tuple[list[Span], int] | None:
    """The spans of the items of the array or object opening at `data[open_at]` (elements, or
    `"key": value` members), without leading whitespace, and the index just after its end.
    None when it is not well-formed: brackets that do not pair, a string or the container
    never closed, an empty item."""
    close = _CLOSING[data[open_at]]
    stack: list[int] = []  # what closes each container opened inside
    spans: list[Span] = []
    start = open_at + 1
    for m in _TOKEN.finditer(data, start):
        at = m.start()
        c = data[at]
        if c == _QUOTE:
            if m.end() - at == 1:
                return None  # a string never closed
        elif c == _COMMA:
            if not stack:
                spans.append((start, at))
                start = m.end()
        elif c in _CLOSING:
            stack.append(_CLOSING[c])
        elif stack:
            if stack.pop() != c:
                return None
        elif c != close:
            return None
        else:
            spans.append((start, at))
            spans = [(_skip_space(data, s, e), e) for s, e in spans]
            if len(spans) == 1 and spans[0][0] == spans[0][1]:
                return [], m.end()  # `[]`
            if any(s == e for s, e in spans):
                return None  # `[,1]`, `[1,]`
            return spans, m.end()
    return None


def _isolated_part(part: bytes | bytearray, limits: _Limits) -> list[Any] | None:
    """A part of `read_compact` (`[` + records + `]`) a record at a time; None when it was not
    cut between records or a record is wrong in more than its strings."""
    split = _items(part, 0)
    if split is None or split[1] != len(part):
        return None
    try:
        return [_compact_record(part[s:e], limits) for s, e in split[0]]
    except _NotIsolable:
        return None


def _isolated(data: bytes | bytearray, record: Callable[[bytes], Any]) -> list[Any] | None:
    """The records of a log object that did not decode, each decoded by `record`; None unless
    the object is well-formed and decodes once its Records array is emptied (one `Records`
    key, an array), and every record that does not decode is wrong only in its strings."""
    top = _skip_space(data, 0, len(data))
    if top == len(data) or data[top] != _OBJECT:
        return None
    split = _items(data, top)
    if split is None:
        return None
    found = -1
    for s, e in split[0]:
        key = _STRING.match(data, s, e)
        if key is None:
            return None
        colon = _skip_space(data, key.end(), e)
        if colon == e or data[colon] != _COLON:
            return None
        if _is_records_key(key.group()):
            value = _skip_space(data, colon + 1, e)
            if found >= 0 or value == e or data[value] != _ARRAY:
                return None  # twice, or not an array: the reference decoding says
            found = value
    if found < 0:
        return None
    array = _items(data, found)
    if array is None:
        return None
    spans, end = array
    view = memoryview(data)
    try:
        orjson.loads(b"".join([view[:found], b"[]", view[end:]]))
    except orjson.JSONDecodeError:
        return None  # the object is wrong outside its records
    try:
        return [record(bytes(view[s:e])) for s, e in spans]
    except _NotIsolable:
        return None


def _skip_space(data: bytes | bytearray, start: int, end: int) -> int:
    """The index of the first byte from `start` on that is not JSON whitespace, or `end`."""
    found = _NOT_SPACE.search(data, start, end)
    return end if found is None else found.start()


def _is_records_key(key: bytes) -> bool:
    if b"\\" not in key:
        return key == _RECORDS_KEY
    try:
        return bool(orjson.loads(key) == "Records")  # spelled with escapes
    except orjson.JSONDecodeError:
        return False


def _compact_record(item: bytes | bytearray, limits: _Limits) -> Any:
    """One record as `read_compact` gives it: a CompactRecord, else as `_reference_record`
    (counted as decoded whole)."""
    try:
        _check_utf8(item)
        return _decode_record(item)
    except _NOT_COMPACT:
        limits.decode_whole(len(item))
        return _reference_record(item)


def _reference_record(item: bytes | bytearray) -> Any:
    """One record as orjson decodes it, or an `InvalidRecord` when only its strings keep it
    from decoding (it decodes with every string emptied); else `_NotIsolable`."""
    try:
        return orjson.loads(item)
    except orjson.JSONDecodeError:
        pass
    try:
        orjson.loads(_STRING.sub(b'""', item))
    except orjson.JSONDecodeError:
        raise _NotIsolable from None
    try:
        _check_utf8(item)
    except UnicodeDecodeError:
        return InvalidRecord("invalid_utf8")
    return InvalidRecord("invalid_string")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: decoded JSON cannot form cycles, and the GC's scans meanwhile cost
    about 40% of the decoding time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
