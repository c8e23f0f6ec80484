"""The fast path (`read_compact` + `Extractor.extract`) gives what the reference path
(`read_records` + tests/reference_extract.py) gives: the same objects read or refused for the
same reasons, the same tuples with the same first/last times, counts and first events, the same
principals, skip counts, and insertion order. On every fixture, on generated trails, on records
re-laid out as CloudTrail writes them and cut in small pieces, and on hypothesis-mutated records.
"""

from __future__ import annotations

import ast
import copy
import gzip
import inspect
import io
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from cloudtrail_anomaly.domain import events
from cloudtrail_anomaly.domain.detector import DetectionSettings
from cloudtrail_anomaly.domain.events import CompactIdentity, CompactRecord
from cloudtrail_anomaly.domain.extract import Extraction, Extractor
from cloudtrail_anomaly.trail import reader
from cloudtrail_anomaly.trail.reader import EmptyObject, ObjectError, read_compact, read_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import ACCOUNT, assumed_role, record, user
from tests.helpers import load_script
from tests.reference_extract import reference_extract

ROOT = Path(__file__).parent
FIXTURES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.name.endswith(".json.gz"))
# Key every role's sessions apart too, so that per-session keying is exercised on every fixture.
SETTINGS = [DetectionSettings(), DetectionSettings(per_session_roles=("*",))]
FALLBACKS = [("", ""), ("999988887777", "xx-test-1")]


def outcome(read: Any, data: bytes) -> tuple[Any, ...]:
    try:
        return ("ok", read(io.BytesIO(data)))
    except EmptyObject:
        return ("empty",)
    except ObjectError as exc:
        return ("error", exc.reason, str(exc))


def assert_extractions_equal(got: Extraction, expected: Extraction) -> None:
    assert got.stats == expected.stats
    assert got.principals == expected.principals
    assert list(got.principals) == list(expected.principals)
    for key, obs in expected.observed.items():
        assert got.observed.get(key) == obs, key
    assert got.observed == expected.observed
    assert list(got.observed) == list(expected.observed)


def assert_same(data: bytes, fallbacks: list[tuple[str, str]] = FALLBACKS) -> None:
    ref = outcome(read_records, data)
    fast = outcome(read_compact, data)
    assert fast[0] == ref[0]
    if ref[0] != "ok":
        assert fast == ref
        return
    for detection in SETTINGS:
        for account, region in fallbacks:
            extractor = Extractor(detection.per_session_roles)
            expected = reference_extract(ref[1], account, region, detection.per_session_roles)
            # the compact records, and the dicts through the same loop
            assert_extractions_equal(extractor.extract(fast[1], account, region), expected)
            assert_extractions_equal(extractor.extract(ref[1], account, region), expected)


@pytest.fixture(params=[1 << 20, 4096, 97], ids=["1MiB", "4KiB", "97B"])
def piece(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Inflate and read in pieces of this size: small ones cut records everywhere."""
    size: int = request.param
    monkeypatch.setattr(reader, "_PIECE", size)
    monkeypatch.setattr(reader, "_CHUNK", size)
    return size


def cloudtrail_layout(doc: Any) -> bytes:
    """The document as CloudTrail writes it: compact, each record opening with eventVersion."""
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        doc = dict(doc)
        doc["Records"] = [
            {"eventVersion": r.get("eventVersion", "1.08"), **r} if isinstance(r, dict) else r
            for r in doc["Records"]
        ]
    return orjson.dumps(doc)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_every_fixture_as_it_is(path: Path) -> None:
    assert_same(path.read_bytes())


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_every_fixture_laid_out_as_cloudtrail_writes_it(path: Path, piece: int) -> None:
    del piece
    data = gzip.decompress(path.read_bytes())
    laid_out = cloudtrail_layout(orjson.loads(data))
    assert_same(gzip.compress(laid_out), fallbacks=FALLBACKS[:1])
    assert_same(laid_out, fallbacks=FALLBACKS[:1])


def test_fixtures_do_take_the_compact_path() -> None:
    """Else the tests above would compare the reference with itself."""
    path = ROOT / "fixtures/cloudtrail/otrf-ec2-proxy-s3-exfil"
    data = next(path.glob("*.json.gz")).read_bytes()
    records = read_compact(
        io.BytesIO(gzip.compress(cloudtrail_layout(orjson.loads(gzip.decompress(data)))))
    )
    assert records and all(isinstance(r, CompactRecord) for r in records)
    pretty = read_compact(io.BytesIO(data))  # indented: decoded whole, compact all the same
    assert pretty and all(isinstance(r, CompactRecord) for r in pretty)


# -- generated trails ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen() -> Any:
    return load_script("generate_sample")


@pytest.fixture(scope="module")
def trail(gen: Any, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("trail")
    small = ["--accounts", "2", "--history-days", "1", "--live-days", "1", "--scale", "0.05"]
    gen.main(["--out", str(out), *small])
    return sorted(out.rglob("*.json.gz"))


def test_generated_trail(trail: list[Path]) -> None:
    assert len(trail) > 50
    for path in trail:
        assert_same(path.read_bytes(), fallbacks=FALLBACKS[:1])


def test_generated_single_file_in_pieces(gen: Any, tmp_path: Path, piece: int) -> None:
    del piece
    path = tmp_path / "one.json.gz"
    gen.main(["--single-file", str(path), "--target-mb", "0.5"])
    records = read_compact(io.BytesIO(path.read_bytes()))
    assert len(records) > 300 and all(isinstance(r, CompactRecord) for r in records)
    assert_same(path.read_bytes(), fallbacks=FALLBACKS[:1])


# -- layouts the splitter must not be fooled by ----------------------------------------------


def _doc(*records: Any) -> dict[str, Any]:
    return {"Records": [{"eventVersion": "1.08", **r} for r in records]}


NESTED = record(requestParameters={"items": [{"a": 1}, {"eventVersion": "1.0", "x": "},{"}]})
QUOTED = record(userAgent='},{"eventVersion":"1.08"}]}')
LAYOUTS = {
    "nested record start": orjson.dumps(_doc(record(), NESTED, record(), NESTED)),
    "record start in a string": orjson.dumps(_doc(QUOTED, record(), QUOTED)),
    "empty": b'{"Records":[]}',
    "empty with spaces": b'{"Records":[]}\n \r\t',
    "indented": orjson.dumps(_doc(record(), record()), option=orjson.OPT_INDENT_2),
    "another key after": orjson.dumps(_doc(record(), record()))[:-1] + b',"x":[1]}',
    "another array after": orjson.dumps(_doc(record(), record()))[:-1] + b',"x":[]}',
    "Records twice": orjson.dumps(_doc(record(), record()))[:-1] + b',"Records":[]}',
    "a key before": b'{"x":1,' + orjson.dumps(_doc(record()))[1:],
    "a record that is not an object": orjson.dumps(_doc(record(), record()))[:-2] + b",5]}",
    "a sessionContext that is not an object": orjson.dumps(
        _doc(record(), record(userIdentity={**user(), "sessionContext": "x"}))
    ),
    "trailing garbage": orjson.dumps(_doc(record(), record())) + b"x",
    "trailing comma": orjson.dumps(_doc(record(), record()))[:-2] + b",]}",
    "truncated": orjson.dumps(_doc(record(), record()))[:-5],
    "invalid UTF-8 in a field nobody reads": orjson.dumps(
        _doc(record(), record(requestParameters={"k": "\u00e9"}))
    ).replace(b"\xc3\xa9", b"\xff"),
    "an encoded surrogate": orjson.dumps(_doc(record(), record(userAgent="\u00e9"))).replace(
        b"\xc3\xa9", b"\xed\xa0\x80"
    ),
    "non-ASCII": orjson.dumps(_doc(record(userAgent="caf\u00e9 \U0001f600"), record())),
    "a lone surrogate escape": orjson.dumps(_doc(record(), record()))[:-3] + b',"u":"\\ud800"}]}',
    "not JSON": b"<html>AccessDenied</html>",
    "a list": b'[{"Records":[]}]',
    "Records not a list": b'{"Records":{"0":{}}}',
    "duplicate keys in a record": orjson.dumps(_doc(record(), record())).replace(
        b'"eventName":', b'"eventName":"Gone","eventName":', 1
    ),
    "nesting orjson takes": orjson.dumps(_doc(record()))[:-3]
    + b',"deep":'
    + b"[" * 1000
    + b"]" * 1000
    + b"}]}",
    "deep nesting": orjson.dumps(_doc(record()))[:-3]
    + b',"deep":'
    + b"[" * 1100
    + b"]" * 1100
    + b"}]}",
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layouts(name: str, piece: int) -> None:
    del piece
    data = LAYOUTS[name]
    assert_same(data, fallbacks=FALLBACKS[:1])
    assert_same(gzip.compress(data), fallbacks=FALLBACKS[:1])


def test_a_number_beyond_double_range_in_an_unread_field_is_the_one_known_difference() -> None:
    """orjson refuses the whole object; msgspec skips the field without converting it. CloudTrail
    never writes such a number; the difference is documented in docs/benchmarks.md."""
    data = orjson.dumps(_doc(record()))[:-3] + b',"n":1e999}]}'
    assert outcome(read_records, data)[:2] == ("error", "invalid_json")
    assert len(read_compact(io.BytesIO(data))) == 1


# -- the identity projection -----------------------------------------------------------------


def _fields(struct: Any) -> set[str]:
    names = set()
    for field in msgspec.structs.fields(struct):
        names.add(field.encode_name)
        for arg in getattr(field.type, "__args__", ()):
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                names |= _fields(arg)
    return names


def test_compact_identity_holds_every_field_the_principal_functions_read() -> None:
    """Equal CompactIdentities must mean equal principals: every `.get("...")` in the functions
    that read a userIdentity must be a CompactIdentity field (nested ones included)."""
    read: set[str] = set()
    for fn in (events.principal_of_identity, events.account_of_identity):
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                read.add(node.args[0].value)
    assert read
    assert read <= _fields(CompactIdentity)


# -- hypothesis: mutated records -------------------------------------------------------------

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
TIMES = [
    "2024-06-01T00:00:00Z",
    "2024-06-01T23:59:60Z",
    "2024-06-01T24:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-06-01 00:00:00",
    "2024-06-01T00:00:00.123456789Z",
    "2024-06-01T00:00:00+02:00",
    "2024-06-01T0\u00b2:00:00Z",
    "2024-06-01T0\u0663:00:00Z",
    "1969-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
    "2024-06-01T00:00:00",
    "",
]
ACCOUNTS = [ACCOUNT, "210987654321", "12345678901", "123456789012\n", "", "x" * 12]
TYPES = [
    "AssumedRole",
    "Unknown",
    "IAMUser",
    "Root",
    "FederatedUser",
    "AWSAccount",
    "AWSService",
    "SAMLUser",
    "WebIdentityUser",
    "IdentityCenterUser",
    "",
    "SomethingNew",
]
ARNS = [
    f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_1/alice",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci",
    f"arn:aws:iam::{ACCOUNT}:user/bob",
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/x.amazonaws.com/R",
    f"arn:aws:iam::{ACCOUNT}:root",
    "not-an-arn",
    "",
]
FIELD_VALUES: dict[str, Any] = {
    "eventTime": st.sampled_from(TIMES) | json_value,
    "@timestamp": st.sampled_from(TIMES) | json_value,
    "eventSource": st.sampled_from(["s3.amazonaws.com", "lambda.amazonaws.com", ""]) | json_value,
    "eventName": st.sampled_from(["GetObject", "ListFunctions20150331", "X2020_05_31v2", "2020"])
    | json_value,
    "eventType": st.sampled_from(["AwsApiCall", "AwsCloudTrailInsight", "AwsServiceEvent"])
    | json_value,
    "insightDetails": json_value,
    "recipientAccountId": st.sampled_from(ACCOUNTS) | json_value,
    "awsRegion": st.sampled_from(["us-east-1", "eu-west-1", ""]) | json_value,
    "eventID": json_value,
    "errorCode": st.sampled_from(["AccessDenied", ""]) | json_value,
    "sourceIPAddress": json_value,
    "userAgent": st.text(max_size=600) | json_value,
    "eventCategory": json_value,
    "readOnly": st.sampled_from([True, False, "true", "false", "True"]) | json_value,
}
IDENTITY_VALUES: dict[str, Any] = {
    "type": st.sampled_from(TYPES) | json_value,
    "arn": st.sampled_from(ARNS) | json_value,
    "accountId": st.sampled_from(ACCOUNTS) | json_value,
    "principalId": st.sampled_from(["AROAX:alice", "AIDAX", "", ":x"]) | json_value,
    "userName": st.sampled_from(["alice", ""]) | json_value,
    "invokedBy": st.sampled_from(["ec2.amazonaws.com", ""]) | json_value,
    "identityProvider": json_value,
    "accessKeyId": json_value,
    "sessionContext": st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "sessionIssuer": st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "arn": st.sampled_from(ARNS) | json_value,
                    "userName": json_value,
                    "principalId": json_value,
                },
            )
            | json_value,
            "attributes": json_value,
        },
    )
    | json_value,
    "onBehalfOf": st.none()
    | st.fixed_dictionaries({}, optional={"userId": json_value, "identityStoreArn": json_value})
    | json_value,
}
BASES = [
    record(),
    record(userIdentity=assumed_role("AWSReservedSSO_Admin_1", "alice")),
    record(userIdentity=assumed_role("deploy", "ci")),
    record(userIdentity={"accountId": ACCOUNT, "invokedBy": "ec2.amazonaws.com"}),
]


@st.composite
def mutated_record(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(json_scalar)  # not an object at all
    rec = copy.deepcopy(draw(st.sampled_from(BASES)))
    for name, values in FIELD_VALUES.items():
        how = draw(st.integers(0, 9))
        if how == 0:
            rec.pop(name, None)
        elif how == 1:
            rec[name] = draw(values)
    how = draw(st.integers(0, 9))
    if how == 0:
        rec.pop("userIdentity", None)
    elif how == 1:
        rec["userIdentity"] = draw(json_value)
    else:
        ui = rec.setdefault("userIdentity", {})
        for name, values in IDENTITY_VALUES.items():
            if draw(st.integers(0, 3)) == 0:
                ui[name] = draw(values)
    return rec


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    records=st.lists(mutated_record(), max_size=12),
    piece_size=st.sampled_from([1 << 20, 64, 7]),
    compress=st.booleans(),
)
def test_mutated_records(records: list[Any], piece_size: int, compress: bool) -> None:
    data = cloudtrail_layout({"Records": records})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reader, "_PIECE", piece_size)
        mp.setattr(reader, "_CHUNK", piece_size)
        assert_same(gzip.compress(data) if compress else data)
