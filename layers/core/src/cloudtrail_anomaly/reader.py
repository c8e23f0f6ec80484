"""Read one CloudTrail log object: `{"Records": [...]}`, gzipped or not, from any byte stream.

Decompression is streamed and capped: an object that inflates beyond `max_bytes` fails with
`ObjectError("too_large")` before it can exhaust memory (a gzip bomb costs at most the cap).
Every failure is an `ObjectError` whose `reason` is a metric label and whose message says what
was wrong with which object, so one bad object never takes down the batch it came in.
"""

from __future__ import annotations

import gc
import zlib
from typing import Any, Protocol

import orjson

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB decompressed
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


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
    if not first.startswith(_GZIP_MAGIC):
        out = bytearray(first)
        while len(out) <= max_bytes:
            chunk = _read(stream)
            if not chunk:
                return bytes(out)
            out += chunk
        raise _too_large(max_bytes)
    return _inflate(first, stream, max_bytes)


def _read(stream: ByteStream) -> bytes:
    try:
        return stream.read(_CHUNK)
    except OSError as exc:
        raise ObjectError("read_error", f"cannot read object: {exc}") from exc


def _too_large(max_bytes: int) -> ObjectError:
    return ObjectError(
        "too_large", f"object inflates beyond the {max_bytes:,}-byte cap (max_object_bytes)"
    )


def _inflate(first: bytes, stream: ByteStream, max_bytes: int) -> bytes:
    out = bytearray()
    inflater: Any = None  # None between gzip members
    pending = first
    while pending:
        try:
            while pending:
                if inflater is None:
                    if not pending.strip(b"\x00"):
                        break  # zero padding after the last member, as gzip(1) allows
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                # max_length bounds each step, so a bomb is stopped at the cap, not after it.
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise _too_large(max_bytes)
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    # Concatenated gzip members are inflated too, as gzip(1) would.
                    pending = inflater.unused_data + pending
                    inflater = None
        except zlib.error as exc:
            raise ObjectError("corrupt_gzip", f"corrupt gzip data: {exc}") from exc
        pending = _read(stream)
    if inflater is not None:
        raise ObjectError("corrupt_gzip", "truncated gzip stream (no end-of-stream marker)")
    return bytes(out)


def parse_records(data: bytes) -> list[Any]:
    """The `Records` list of a decompressed log object."""
    # orjson allocates one object per JSON value and none of them can form a cycle; pausing the
    # cyclic garbage collector meanwhile saves its repeated full scans (~40% of parse time).
    paused = gc.isenabled()
    gc.disable()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ObjectError("invalid_json", f"invalid JSON: {exc}") from exc
    finally:
        if paused:
            gc.enable()
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
    """Read and parse one log object from a byte stream."""
    return parse_records(read_bytes(stream, max_bytes))
