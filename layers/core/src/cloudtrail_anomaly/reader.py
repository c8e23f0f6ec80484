"""Read one CloudTrail log object: `{"Records": [...]}`, gzipped or not, from any byte stream.

Decompression is streamed and capped: an object that inflates beyond `max_bytes` fails with
`ObjectError("too_large")` before it can exhaust memory (a gzip bomb costs at most the cap).
Every failure is an `ObjectError` whose `reason` is a metric label and whose message says what
was wrong with which object, so one bad object never takes down the batch it came in.

Two readers, one result: `read_records` gives every record whole (dicts, via orjson): the
reference. `read_compact` gives each record reduced to the fields detection reads
(`CompactRecord`, via msgspec, which skips the rest without building it), decoding the Records
array a few hundred records at a time as it inflates; it is what detection runs (see
docs/benchmarks.md). An object laid out otherwise is decoded whole, and one that msgspec cannot
decode as orjson would goes to the reference decoding, so both readers accept and reject the
same objects, for the same reasons (one exception: docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import msgspec
import orjson
from isal import isal_zlib

from .events import CompactRecord

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB decompressed
_CHUNK = 1 << 20  # read from the stream
_PIECE = 1 << 20  # inflated at a time: what `read_compact` holds besides its records
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + 15

# isal's stub declares `error` an instance; it is the exception class, as zlib's is.
_INFLATE_ERROR = cast("type[Exception]", isal_zlib.error)


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ObjectError(Exception):
    """A log object that cannot be read; `reason` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EmptyObject(Exception):
    """A zero-byte object: nothing to read, and not an error (CloudTrail never writes one)."""


def read_bytes(stream: ByteStream, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The object's decompressed bytes, inflating gzip (all members) as a stream, capped."""
    return b"".join(_pieces(stream, max_bytes))


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


def _too_large(max_bytes: int) -> ObjectError:
    return ObjectError(
        "too_large", f"object inflates beyond the {max_bytes:,}-byte cap (max_object_bytes)"
    )


def _inflate(first: bytes, stream: ByteStream, max_bytes: int) -> Iterator[bytes]:
    # ISA-L inflates the same deflate streams as zlib, about twice as fast (docs/benchmarks.md).
    size = 0
    inflater: Any = None  # None between gzip members
    pending = first
    while pending:
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
    with _gc_paused():
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ObjectError("invalid_json", f"invalid JSON: {exc}") from exc
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
    return parse_records(read_bytes(stream, max_bytes))


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
_decode_log = msgspec.json.Decoder(_Log).decode


def read_compact(stream: ByteStream, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Any]:
    """Read one log object as `read_records` does, each record reduced to a `CompactRecord`.

    Raises what `read_records` raises for the same object. An object that msgspec cannot give
    as CompactRecords (a record that is not an object, say) comes back as `read_records` gives
    it, so callers take both kinds (`Detector.extract` does).
    """
    recorded = _Recorded(stream)
    with _gc_paused():
        pieces = _pieces(recorded, max_bytes)
        records = _decode_compact(pieces)
        if records is not None:
            return records
        # A part did not decode: read to the end (its errors come first, as in read_records),
        # then inflate again what was read and decode it whole.
        for _ in pieces:
            pass
        return _decode_whole(read_bytes(io.BytesIO(b"".join(recorded.chunks)), max_bytes))


class _Recorded:
    """A stream that keeps what was read from it: the compressed object, about a tenth of the
    inflated one, is what `read_compact` holds to decode it again should it have to."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self.chunks: list[bytes] = []

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._stream.read(size)
        self.chunks.append(chunk)
        return chunk


def _decode_compact(pieces: Iterator[bytes]) -> list[Any] | None:
    """The records, decoded a part at a time; None when a part does not decode."""
    first = b""
    for piece in pieces:
        first += piece
        if len(first) >= len(_HEAD):
            break
    if not first.startswith(_HEAD):
        # Not laid out as CloudTrail writes it: decode it whole.
        return _decode_whole(b"".join([first, *pieces]))
    records: list[Any] = []
    held = [first[len(_HEAD) :]]  # inflated, not decoded yet: from a record start on
    for piece in pieces:
        # Decode up to the last record start in this piece: each part is `[` + whole records
        # + `]`. A cut inside a string or a nested object makes that part invalid JSON (the
        # brackets cannot balance), so a part that decodes was cut between records.
        cut = piece.rfind(_NEXT_RECORD)
        if cut < 0:
            held.append(piece)
            continue
        decoded = _decode_part(b"".join([b"[", *held, memoryview(piece)[: cut + 1], b"]"]))
        if decoded is None:
            return None
        records += decoded
        held = [piece[cut + 2 :]]
    # What is held is the last records and the closing `]}`.
    tail = b"".join(held).rstrip(_JSON_SPACE)
    if not tail.endswith(b"]}"):
        return None
    decoded = _decode_part(b"".join([b"[", memoryview(tail)[:-1]]))
    return None if decoded is None else records + decoded


def _decode_part(part: bytes) -> list[CompactRecord] | None:
    try:
        _check_utf8(part)
        return _decode_records(part)
    except _NOT_COMPACT:
        return None


def _decode_whole(data: bytes) -> list[Any]:
    """An object laid out otherwise: msgspec on the whole of it, else the reference decoding."""
    try:
        _check_utf8(data)
        return list(_decode_log(data).Records)
    except _NOT_COMPACT:
        # Not a list of objects, or not JSON: the reference says which, with its own message.
        return parse_records(data)


def _check_utf8(data: bytes) -> None:
    # msgspec does not validate the UTF-8 of strings it skips; orjson rejects the whole object.
    if not data.isascii():
        data.decode("utf-8")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: decoded JSON cannot form cycles, and the GC's scans meanwhile cost
    about 40% of the decoding time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
