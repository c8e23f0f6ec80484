"""Reading one log object: gzip or plain, streamed, capped, and every failure an ObjectError."""

from __future__ import annotations

import gzip
import io
import os
import tracemalloc
import zlib
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.trail import reader
from cloudtrail_anomaly.trail.reader import (
    EmptyObject,
    ObjectError,
    parse_records,
    read_bytes,
    read_compact,
    read_records,
)

from tests.builders import record
from tests.helpers import OTRF, STRATUS_PASSWORD, fixture_bytes, gz

DOC = {"Records": [record(), record("s3.amazonaws.com:ListBuckets")]}
RAW = orjson.dumps(DOC)


class Trickle:
    """A stream that returns at most `step` bytes a read, as a network body may."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self._buf = io.BytesIO(data)
        self.step = step
        self.consumed = 0

    def read(self, size: int = -1, /) -> bytes:
        n = self.step if size < 0 else min(size, self.step)
        chunk = self._buf.read(n)
        self.consumed += len(chunk)
        return chunk


class Failing:
    def read(self, size: int = -1, /) -> bytes:
        raise ConnectionResetError(104, "Connection reset by peer")


def _error(data: bytes, max_bytes: int = 1 << 30) -> ObjectError:
    with pytest.raises(ObjectError) as info:
        read_records(io.BytesIO(data), max_bytes)
    return info.value


def test_gzip_object() -> None:
    assert read_records(io.BytesIO(gzip.compress(RAW))) == DOC["Records"]


def test_plain_json_object() -> None:
    assert read_records(io.BytesIO(RAW)) == DOC["Records"]


def test_real_fixture_objects() -> None:
    records = read_records(io.BytesIO(fixture_bytes(STRATUS_PASSWORD)))
    assert len(records) == 34
    assert {r["userIdentity"]["type"] for r in records} == {"AssumedRole", "IAMUser"}
    assert len(read_records(io.BytesIO(fixture_bytes(OTRF)))) == 103


def test_multi_member_gzip_is_inflated_whole() -> None:
    cut = len(RAW) // 3
    data = (
        gzip.compress(RAW[:cut]) + gzip.compress(RAW[cut : 2 * cut]) + gzip.compress(RAW[2 * cut :])
    )
    assert read_records(io.BytesIO(data)) == DOC["Records"]


def test_zero_padding_after_the_last_member_is_ignored() -> None:
    assert read_records(io.BytesIO(gzip.compress(RAW) + b"\x00" * 512)) == DOC["Records"]


def test_short_reads_from_the_stream() -> None:
    assert read_records(Trickle(gzip.compress(RAW), step=1)) == DOC["Records"]
    assert read_records(Trickle(RAW, step=7)) == DOC["Records"]


@pytest.mark.parametrize("keep", [2, 10, 0.5, -8, -1])
def test_truncated_gzip(keep: float) -> None:
    data = gzip.compress(RAW)
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    err = _error(data[:cut])
    assert err.reason == "corrupt_gzip"
    assert "gzip" in str(err)


def test_flipped_bytes_in_gzip_body() -> None:
    data = bytearray(gzip.compress(RAW))
    data[len(data) // 2] ^= 0xFF
    assert _error(bytes(data)).reason == "corrupt_gzip"


def test_flipped_crc_in_gzip_trailer() -> None:
    data = bytearray(gzip.compress(RAW))
    data[-6] ^= 0x01  # in the CRC32: the data inflate fine, the check must not
    err = _error(bytes(data))
    assert err.reason == "corrupt_gzip"


def test_gzip_magic_followed_by_garbage() -> None:
    assert _error(b"\x1f\x8b" + b"this is not deflate data" * 4).reason == "corrupt_gzip"


def test_trailing_garbage_after_a_member() -> None:
    assert _error(gzip.compress(RAW) + b"garbage").reason == "corrupt_gzip"


def test_neither_gzip_nor_json() -> None:
    err = _error(b"PK\x03\x04 this is a zip file, not CloudTrail")
    assert err.reason == "invalid_json"
    assert "invalid JSON" in str(err)


def test_gzip_of_non_json() -> None:
    assert _error(gzip.compress(b"<html>AccessDenied</html>")).reason == "invalid_json"


def test_gzip_of_nothing_is_invalid_json_not_empty() -> None:
    assert _error(gzip.compress(b"")).reason == "invalid_json"


def test_truncated_json() -> None:
    assert _error(gzip.compress(RAW[:-3])).reason == "invalid_json"


@pytest.mark.parametrize(
    ("doc", "reason", "named"),
    [
        ([{"Records": []}], "no_records", "list"),
        ({"records": []}, "no_records", "dict"),
        ({}, "no_records", "'Records'"),
        ("Records", "no_records", "str"),
        (None, "no_records", "NoneType"),
        ({"Records": {"0": {}}}, "bad_records", "'Records' is a dict"),
        ({"Records": None}, "bad_records", "NoneType"),
        ({"Records": "[]"}, "bad_records", "str"),
    ],
)
def test_documents_that_are_not_log_objects(doc: object, reason: str, named: str) -> None:
    err = _error(gz(doc))
    assert err.reason == reason
    assert named in str(err)


def test_digest_file_is_not_a_log_object() -> None:
    from tests.helpers import DIGESTS

    err = _error(DIGESTS[0].read_bytes())
    assert err.reason == "no_records"


def test_empty_records_list_is_fine() -> None:
    assert read_records(io.BytesIO(gz({"Records": []}))) == []


def test_zero_byte_object_is_empty_not_an_error() -> None:
    with pytest.raises(EmptyObject):
        read_records(io.BytesIO(b""))


def test_read_error_is_an_object_error() -> None:
    with pytest.raises(ObjectError) as info:
        read_records(Failing())
    assert info.value.reason == "read_error"
    assert "Connection reset" in str(info.value)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_size_cap_is_inclusive(compress: bool) -> None:
    data = gzip.compress(RAW) if compress else RAW
    assert read_bytes(io.BytesIO(data), max_bytes=len(RAW)) == RAW
    with pytest.raises(ObjectError) as info:
        read_bytes(io.BytesIO(data), max_bytes=len(RAW) - 1)
    assert info.value.reason == "too_large"
    assert f"{len(RAW) - 1:,}-byte cap" in str(info.value)


def test_size_cap_counts_all_gzip_members() -> None:
    data = gzip.compress(RAW) + gzip.compress(b" " * 100)
    with pytest.raises(ObjectError) as info:
        read_bytes(io.BytesIO(data), max_bytes=len(RAW) + 50)
    assert info.value.reason == "too_large"


def test_plain_object_beyond_the_cap_stops_reading_early() -> None:
    stream = Trickle(b" " * 5_000_000, step=1 << 20)
    with pytest.raises(ObjectError) as info:
        read_bytes(stream, max_bytes=1000)
    assert info.value.reason == "too_large"
    assert stream.consumed < 5_000_000  # it stopped at the cap, not at the end


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """About 450 KB of gzip that inflates to 100 MiB of zeros."""
    c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\x00" * (1 << 20)
    return b"".join(c.compress(block) for _ in range(100)) + c.flush()


def test_gzip_bomb_is_stopped_at_the_cap_without_inflating_it(bomb: bytes) -> None:
    cap = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ObjectError) as info:
            read_bytes(io.BytesIO(bomb), max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "too_large"
    # Inflating it all would take 100 MiB; stopping at the cap takes a few times the cap.
    assert peak < 16 * cap, f"peak {peak:,} bytes"


def test_parse_records_directly() -> None:
    assert parse_records(RAW) == DOC["Records"]
    with pytest.raises(ObjectError):
        parse_records(b"{")


# -- memory: the cap bounds what is held, whatever the object inflates to -------------------------


def _peak(read: Any, data: bytes, max_bytes: int) -> int:
    tracemalloc.start()
    try:
        read(io.BytesIO(data), max_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


SIZE = 8 << 20


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    "data",
    [
        # Laid out otherwise than CloudTrail writes: decoded whole. Characters of 2, 3 and 4
        # bytes in a field detection does not read: a str of them would take 12 bytes for 9.
        b'{"x":"' + "\u00e9\u20ac\U0001f600".encode() * (SIZE // 9) + b'","Records":[]}',
        b" " * SIZE + b'{"Records":[]}',
        # CloudTrail's layout, one long record: held in the buffer that becomes its part.
        b'{"Records":[{"eventVersion":"1.08","x":"' + b"A" * SIZE + b'"}]}',
    ],
    ids=["non-ASCII", "spaces", "one long record"],
)
def test_an_object_under_the_cap_is_held_once(data: bytes, compress: bool) -> None:
    """Its inflated bytes in one buffer, checked as UTF-8 a step at a time: not the pieces and
    their join, nor the whole of it as a str. (`read_records` holds it once too, but orjson
    reserves about 12 bytes a byte to parse it, so tracemalloc cannot show it there.)"""
    # Decoded whole: at most a 32nd of the cap may be.
    peak = _peak(read_compact, gzip.compress(data) if compress else data, 32 * len(data))
    assert peak < 1.4 * len(data), f"peak {peak:,} bytes for {len(data):,}"


def test_an_object_laid_out_otherwise_is_decoded_whole_up_to_a_32nd_of_the_cap() -> None:
    """Decoded whole, any JSON can take ~30 times its size (`[[],[],...]`): beyond a 32nd of
    the cap it is too_large, with a message naming the limit and what to raise."""
    # One record, not an object: msgspec cannot decode it, orjson decodes the whole.
    data = b' {"Records":[[' + b"[]," * (1 << 20) + b"[]]]}"
    cap = 32 * len(data)
    assert len(read_compact(io.BytesIO(data), cap)[0]) == (1 << 20) + 1
    with pytest.raises(ObjectError) as info:
        read_compact(io.BytesIO(gzip.compress(data)), cap - 32)
    assert info.value.reason == "too_large"
    assert f"the {cap - 32:,}-byte cap (max_object_bytes)" in str(info.value)
    assert "not laid out as CloudTrail writes it" in str(info.value)
    assert "raise the cap" in str(info.value)


def test_false_cuts_do_not_send_an_object_to_the_whole_decoding() -> None:
    """An object inside a record opening with eventVersion looks like a record start: the part
    cut there does not decode, so it is held until the next cut, not decoded whole."""
    inner = {"items": [{"a": 1}, {"eventVersion": "x", "b": [1, 2]}]}
    records = [record(requestParameters=inner) for _ in range(3000)]
    data = orjson.dumps({"Records": [{"eventVersion": "1.08", **r} for r in records]})
    assert b'},{"eventVersion":"x"' in data
    # a 32nd of this cap is well under the object: it must not be decoded whole
    got = read_compact(io.BytesIO(gzip.compress(data)), 2 * len(data))
    assert len(got) == 3000


@pytest.mark.parametrize(
    "end",
    [b"]}", b"]} trailing", b'{"eventVersion":"1.08","x":"' + b"A" * (5 << 20) + b'"}]}'],
    ids=["CloudTrail's", "not CloudTrail's end", "a record without end in 4 MiB"],
)
def test_records_are_consumed_as_they_are_decoded_and_again_whole_if_need_be(end: bytes) -> None:
    """`consume_compact` gives the records a part at a time; an object found, after parts were
    given, to need decoding whole is given again whole to a second call, whose result counts."""
    records = [record(t=1_760_000_000 + i) for i in range(6000)]  # parts of 1 MiB: several
    body = b",".join(orjson.dumps({"eventVersion": "1.08", **r}) for r in records)
    data = b'{"Records":[' + body + (b"," if end != b"]}" else b"") + end
    calls: list[int] = []  # how many records each call of `consume` was given

    def consume(items: Any) -> list[Any]:
        got: list[Any] = []
        try:
            got.extend(items)
        finally:
            calls.append(len(got))
        return got

    def time_of(r: Any) -> Any:
        return r.get("eventTime") if isinstance(r, dict) else r.eventTime

    try:
        expected = [time_of(r) for r in read_records(io.BytesIO(gzip.compress(data)))]
    except ObjectError as exc:  # not JSON: refused for the same reason, after parts were given
        with pytest.raises(ObjectError) as info:
            reader.consume_compact(io.BytesIO(gzip.compress(data)), consume)
        assert info.value.reason == exc.reason == "invalid_json"
        assert len(calls) == 1 and 0 < calls[0] < len(records)  # none is given again
        return
    got = reader.consume_compact(io.BytesIO(gzip.compress(data)), consume)
    assert [time_of(r) for r in got] == expected
    if end == b"]}":
        assert calls == [len(expected)]
    else:  # given a part at a time, then again whole
        assert len(calls) == 2 and 0 < calls[0] < len(expected) and calls[1] == len(expected)


@pytest.mark.parametrize(
    "tail",
    [b"\x00" * 8192, gzip.compress(b"") * 400],
    ids=["zero padding", "empty members"],
)
@pytest.mark.parametrize("read", [read_records, read_compact, read_bytes])
def test_compressed_bytes_beyond_the_cap_are_too_large(read: Any, tail: bytes) -> None:
    """Deflate never makes data much larger: more compressed bytes than the cap are padding or
    empty members, which `read_compact` would otherwise keep without bound."""
    data = gzip.compress(RAW) + tail
    assert read(io.BytesIO(data)) is not None  # without a cap they are read, as gzip(1) does
    with pytest.raises(ObjectError) as info:
        read(io.BytesIO(data), max_bytes=4096)
    assert info.value.reason == "too_large"
    assert "beyond the 4,096-byte cap (max_object_bytes) even compressed" in str(info.value)


@pytest.mark.parametrize("read", [read_records, read_compact])
def test_a_bomb_in_cloudtrail_layout_is_stopped_at_the_cap(read: Any) -> None:
    """One record that never ends: held a part at a time, then refused at the cap."""
    c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = c.compress(b'{"Records":[{"eventVersion":"1.08","x":"')
    bomb = head + b"".join(c.compress(b"A" * (1 << 20)) for _ in range(64)) + c.flush()
    cap = 4 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ObjectError) as info:
            read(io.BytesIO(bomb), cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "too_large"
    assert peak < 1.5 * cap + (3 << 20), f"peak {peak:,} bytes"


def test_the_resident_size_is_read_fresh_and_by_each_process_its_own() -> None:
    # The memory guard reads /proc/self/statm through one fd per process.
    before = reader._resident()
    held = b"x" * (128 << 20)  # written, so resident
    assert reader._resident() - before >= 100 << 20
    del held
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked worker inherits the fd, which would read its parent's figures
        start = reader._resident()
        mine = b"y" * (128 << 20)
        os.write(write_end, str(reader._resident() - start).encode())
        del mine
        os._exit(0)
    os.close(write_end)
    grew = int(os.read(read_end, 64))
    os.waitpid(pid, 0)
    assert grew >= 100 << 20


def test_a_read_that_takes_more_memory_than_the_cap_allows_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    figures = iter([0, 100 << 30])  # at the start, then after the first part decoded
    monkeypatch.setattr(reader, "_resident", lambda: next(figures, 100 << 30))
    with pytest.raises(ObjectError) as err:
        read_compact(io.BytesIO(gz(DOC)))
    assert err.value.reason == "too_large" and "of memory to decode" in str(err.value)
