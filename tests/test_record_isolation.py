"""One bad record never sinks its object: a record whose strings are not valid is skipped alone.

A lone surrogate escape, a control character, a bad escape or bytes that are not UTF-8 in one
record used to fail the whole object (`invalid_json`), so no principal in it was analysed. Now
that record is skipped with a counted reason (`records_skipped.invalid_string` or
`records_skipped.invalid_utf8`) and the others are read: by both readers alike (the fast path
and the reference, as tests/test_fast_path.py holds them), wherever the record falls in the
parts the fast path decodes, and through the real-time use case. What is wrong beyond strings
still fails the object.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.events import InvalidRecord, RecordSkipped, normalize
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import ObjectRef, OpenedObject
from cloudtrail_anomaly.stores.memory import MemoryBaseline, MemoryLedger
from cloudtrail_anomaly.trail import reader
from cloudtrail_anomaly.trail.reader import ObjectError, read_compact, read_records
from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor

from tests.builders import ACCOUNT, record, user
from tests.fakes import ListSink
from tests.reference_extract import reference_extract

MARK = b'"@@BAD@@"'

# Each shape is a whole JSON string token as it would sit in the object's bytes.
INVALID_STRINGS = {
    "lone high surrogate": b'"\\ud800"',
    "lone low surrogate": b'"\\udc00"',
    "high surrogate then a letter": b'"\\ud800\\u0041"',
    "surrogates reversed": b'"\\udc00\\ud800"',
    "lone surrogate at the end": b'"Mozilla/5.0 \\udbff"',
    "control character": b'"a\x01b"',
    "raw tab": b'"a\tb"',
    "raw newline": b'"a\nb"',
    "bad escape": b'"\\x41"',
    "short unicode escape": b'"\\u12"',
    "unicode escape not hex": b'"\\uZZZZ"',
}
INVALID_UTF8 = {
    "invalid start byte": b'"\xff"',
    "lone continuation byte": b'"a\x80b"',
    "truncated sequence": b'"caf\xc3"',
    "overlong encoding": b'"\xc0\xaf"',
    "encoded surrogate": b'"\xed\xa0\x80"',
    "beyond U+10FFFF": b'"\xf4\x90\x80\x80"',
}
SHAPES = {
    **{name: (shape, "invalid_string") for name, shape in INVALID_STRINGS.items()},
    **{name: (shape, "invalid_utf8") for name, shape in INVALID_UTF8.items()},
}


def _records(bad: dict[str, Any], n: int = 3) -> list[dict[str, Any]]:
    """n records of alice, bob's bad one, n records of carol."""
    return [
        *(record(f"iam.amazonaws.com:Get{i}", identity=user("alice")) for i in range(n)),
        bad,
        *(record(f"s3.amazonaws.com:List{i}", identity=user("carol")) for i in range(n)),
    ]


# Where the bad string sits: fields detection reads (top level, in userIdentity), fields it
# skips (nested), and a key.
FIELDS = {
    "userAgent": lambda: record(identity=user("bob"), userAgent="@@BAD@@"),
    "userIdentity.arn": lambda: record(identity={**user("bob"), "arn": "@@BAD@@"}),
    "requestParameters": lambda: record(
        identity=user("bob"), requestParameters={"filters": [{"name": "@@BAD@@"}]}
    ),
    "a key": lambda: record(identity=user("bob"), requestParameters={"@@BAD@@": 1}),
}


def _object(bad: dict[str, Any], shape: bytes, indent: bool = False, n: int = 3) -> bytes:
    option = orjson.OPT_INDENT_2 if indent else 0
    data = orjson.dumps({"Records": _records(bad, n)}, option=option)
    assert data.count(MARK) == 1
    return data.replace(MARK, shape)


def _read_both(data: bytes) -> tuple[list[Any], list[Any]]:
    return read_compact(io.BytesIO(data)), read_records(io.BytesIO(data))


def _check(data: bytes, reason: str, n: int = 3) -> None:
    """Both readers give bob's record as an InvalidRecord and the others as they are; detection
    counts it and analyses alice and carol, the same through either path."""
    fast, ref = _read_both(data)
    assert len(fast) == len(ref) == 2 * n + 1
    assert fast[n] == ref[n] == InvalidRecord(reason)
    detector = Detector(MemoryBaseline(), AlertPolicy())
    got, expected = detector.extract(fast), reference_extract(ref)
    assert got.stats == expected.stats
    assert got.observed == expected.observed
    assert got.principals == expected.principals
    assert expected.stats["records"] == 2 * n + 1
    assert expected.stats[f"records_skipped.{reason}"] == 1
    assert sum(v for k, v in expected.stats.items() if k.startswith("records_skipped.")) == 1
    names = {p.rsplit("/", 1)[-1] for _, p in expected.principals}
    assert names == {"alice", "carol"}


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_record_with_an_invalid_string_is_skipped_alone(shape: str, field: str) -> None:
    text, reason = SHAPES[shape]
    data = _object(FIELDS[field](), text)
    _check(data, reason)
    _check(gzip.compress(data), reason)


@pytest.fixture(params=[1 << 20, 4096, 97], ids=["1MiB", "4KiB", "97B"])
def piece(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Inflate and read in pieces of this size: the bad record falls in every kind of part."""
    size: int = request.param
    monkeypatch.setattr(reader, "_PIECE", size)
    monkeypatch.setattr(reader, "_CHUNK", size)
    return size


@pytest.mark.parametrize("indent", [False, True], ids=["cloudtrail layout", "indented"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", ["lone high surrogate", "raw tab", "invalid start byte"])
def test_in_any_part_and_layout(shape: str, compress: bool, indent: bool, piece: int) -> None:
    del piece
    text, reason = SHAPES[shape]
    data = _object(FIELDS["userAgent"](), text, indent=indent, n=40)
    _check(gzip.compress(data) if compress else data, reason, n=40)


def test_several_bad_records_and_the_first_and_last() -> None:
    bad = record(identity=user("bob"), userAgent="@@BAD@@")
    records = [bad, *_records(bad, 2), bad]
    data = orjson.dumps({"Records": records})
    shapes = [b'"\\ud800"', b'"\xff"', b'"\x01"']
    for shape in shapes:
        data = data.replace(MARK, shape, 1)
    for got in _read_both(data):
        kinds = [r.reason if isinstance(r, InvalidRecord) else "ok" for r in got]
        assert kinds == ["invalid_string", "ok", "ok", "invalid_utf8", "ok", "ok", "invalid_string"]


def test_an_invalid_record_is_skipped_with_its_reason() -> None:
    for reason in ("invalid_string", "invalid_utf8"):
        with pytest.raises(RecordSkipped) as info:
            normalize(InvalidRecord(reason))
        assert info.value.reason == reason


# -- what is wrong beyond strings still fails the object -------------------------------------

_GOOD = orjson.dumps({"Records": [record(), record()]})
OBJECT_ERRORS = {
    "NaN in a record": _GOOD[:-3] + b',"n":NaN}]}',
    "a missing comma in a record": _GOOD[:-3] + b',"a":1 "b":2}]}',
    "nesting too deep": _GOOD[:-3] + b',"deep":' + b"[" * 1100 + b"]" * 1100 + b"}]}",
    "a backslash that escapes the closing quote": _GOOD.replace(
        b'"aws-cli/2.15.0"', b'"aws-cli\\"', 1
    ),
    "a bad string outside Records": b'{"x":"\\ud800",' + _GOOD[1:],
    "a bad string in Records given twice": _GOOD[:-1] + b',"Records":[{"userAgent":"\\ud800"}]}',
    "truncated after a bad record": _GOOD[:-3] + b',"u":"\\ud800"}',
    "trailing garbage after a bad record": _GOOD[:-3] + b',"u":"\\ud800"}]}x',
    "a bad string as the document": b'"\\ud800"',
}


@pytest.mark.parametrize("name", list(OBJECT_ERRORS))
def test_what_is_wrong_beyond_strings_still_fails_the_object(name: str) -> None:
    data = OBJECT_ERRORS[name]
    outcomes = []
    for read in (read_compact, read_records):
        with pytest.raises(ObjectError) as info:
            read(io.BytesIO(gzip.compress(data)))
        outcomes.append((info.value.reason, str(info.value)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "invalid_json"


# -- through the real-time use case ----------------------------------------------------------

KEY = (
    f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/"
    f"{ACCOUNT}_CloudTrail_us-east-1_20240601T0005Z_abc.json.gz"
)


class OneObject:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, bucket: str, key: str) -> OpenedObject:
        return OpenedObject('"etag"', io.BytesIO(self.data))


def test_the_other_principals_of_the_object_are_analysed_and_alerted() -> None:
    data = gzip.compress(_object(FIELDS["userAgent"](), b'"\\ud800"'))
    baseline, ledger, sink = MemoryBaseline(), MemoryLedger(), ListSink()
    processor = RealtimeProcessor(
        Detector(baseline, AlertPolicy(PolicySettings(learning_days=0))),
        OneObject(data),
        ledger,
        sink,
        outbox=baseline.outbox,
    )
    outcome = processor.process(ObjectRef("trail", KEY))
    assert (outcome.status, outcome.reason) == ("processed", "")
    assert outcome.stats["records_skipped.invalid_string"] == 1
    assert outcome.stats["records"] == 7
    assert {a["principal"]["name"] for a in sink.alerts} == {"alice", "carol"}
    assert ("trail", KEY, "etag") in ledger.entries
