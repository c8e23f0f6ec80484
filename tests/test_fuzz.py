"""Property tests: real fixtures, mutated, through the reader and the detector.

Whatever the bytes or the records, the only outcomes allowed are a result, an `ObjectError` or
`EmptyObject` for the object, or records counted as skipped: never another exception. Every
record of a readable object is either used or counted as skipped, and every alert renders as
the JSON contract.
"""

from __future__ import annotations

import gzip
import io
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudtrail_anomaly.domain.detector import Detector, ObjectResult
from cloudtrail_anomaly.domain.events import parse_event_time
from cloudtrail_anomaly.domain.model import iso
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline
from cloudtrail_anomaly.trail.keys import KeyKind, classify_key, delivery_sort_key
from cloudtrail_anomaly.trail.reader import EmptyObject, ObjectError, read_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import (
    EVENT_VERSION_1_0,
    INSIGHT,
    OTRF,
    SERVICE_EVENT,
    STRATUS_FEDERATION,
    STRATUS_LAMBDA,
    TRAILSCRAPER,
    fixture_bytes,
    fixture_records,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Small files of many shapes: every identity type the fixtures hold, odd times, skips.
SAMPLES = [
    STRATUS_FEDERATION,
    STRATUS_LAMBDA,
    TRAILSCRAPER,
    INSIGHT,
    EVENT_VERSION_1_0,
    SERVICE_EVENT,
    "panther-rule-tests/aws_cloudtrail_account_discovery.json.gz",
    "panther-rule-tests/aws_ec2_many_passwors_read_attempts.json.gz",
    "panther-rule-tests/aws_root_activity.json.gz",
    "panther-rule-tests/aws_s3_bucket_deleted.json.gz",
    "panther-rule-tests/aws_saml_activity.json.gz",
    "panther-rule-tests/retrieve_sso_access_token.json.gz",
    "traildiscover/Marketplace-AcceptAgreementRequest.json.gz",
    "traildiscover/SES-SendEmail.json.gz",
    "aws-docs-examples/cloudtrail-event-reference-aws-console-sign-in-events__07.json.gz",
]
CAP = 4 << 20
# Event times outside these years are refused as corrupt (see events.parse_event_time).
PLAUSIBLE = (
    0,
    int(datetime(9000, 1, 1, tzinfo=UTC).timestamp()),
)  # a small decompression cap, so huge mutations exercise it too

TRICKY_STRINGS = [
    "",
    "arn:",
    "arn:aws:sts::123456789012:assumed-role/",
    "arn:aws:sts::123456789012:assumed-role/R/",
    "arn:aws-us-gov:sts::123456789012:assumed-role/R/s",
    "arn:aws:iam::123456789012:role/aws-service-role/x.amazonaws.com/R",
    "AssumedRole",
    "IAMUser",
    "Root",
    "FederatedUser",
    "AWSAccount",
    "AWSService",
    "SAMLUser",
    "WebIdentityUser",
    "IdentityCenterUser",
    "Unknown",
    "AwsCloudTrailInsight",
    "123456789012",
    "2024-02-30T00:00:00Z",
    "0000-00-00T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-12:00",
    "2024-06-01 00:00:00.000000000",
    "2024-06-01T00:00:00.999999999999+05:30",
    "redacted",
    "ListFunctions20150331v2",
    "20150331",
    "\x00",
    "\u202e\ufeff",
    "x" * 100_000,
]
HUGE = [10**30, -(10**30), 2**63, -(2**63) - 1, 1e308, float("inf"), float("nan"), "9" * 5000]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(TRICKY_STRINGS),
    st.sampled_from(HUGE),
)
junk = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = [
    ("eventTime",),
    ("@timestamp",),
    ("eventSource",),
    ("eventName",),
    ("awsRegion",),
    ("eventID",),
    ("errorCode",),
    ("sourceIPAddress",),
    ("userAgent",),
    ("eventType",),
    ("eventCategory",),
    ("readOnly",),
    ("recipientAccountId",),
    ("insightDetails",),
    ("userIdentity",),
    ("userIdentity", "type"),
    ("userIdentity", "arn"),
    ("userIdentity", "accountId"),
    ("userIdentity", "principalId"),
    ("userIdentity", "userName"),
    ("userIdentity", "invokedBy"),
    ("userIdentity", "identityProvider"),
    ("userIdentity", "onBehalfOf"),
    ("userIdentity", "onBehalfOf", "userId"),
    ("userIdentity", "onBehalfOf", "identityStoreArn"),
    ("userIdentity", "sessionContext"),
    ("userIdentity", "sessionContext", "sessionIssuer"),
    ("userIdentity", "sessionContext", "sessionIssuer", "arn"),
    ("userIdentity", "sessionContext", "sessionIssuer", "userName"),
    ("userIdentity", "sessionContext", "sessionIssuer", "principalId"),
]
mutation = st.tuples(
    st.integers(min_value=0),  # which record (modulo the count)
    st.sampled_from(FIELDS),
    st.sampled_from(["drop", "replace"]),
    junk,
)


def _detector(baseline: Any = None) -> Detector:
    return Detector(
        baseline if baseline is not None else MemoryBaseline(),
        AlertPolicy(PolicySettings(learning_days=0)),
    )


def _check(result: ObjectResult, n_records: int) -> None:
    stats = result.stats
    assert stats["records"] == n_records
    skipped = sum(v for k, v in stats.items() if k.startswith("records_skipped."))
    assert stats["events"] + skipped == n_records, dict(stats)
    for alert in result.alerts + result.suppressed:
        doc = orjson.loads(orjson.dumps(alert.to_dict()))
        assert doc["new_actions"]
        assert doc["principal"]["arn"]


def _through_reader(data: bytes, baseline: Any = None) -> None:
    """Read and detect one object; the allowed failures are the object's own."""
    try:
        records = read_records(io.BytesIO(data), CAP)
    except (ObjectError, EmptyObject):
        return
    _check(_detector(baseline).process(records, "fuzz"), len(records))


def _mutate(records: list[Any], mutations: list[tuple[int, tuple[str, ...], str, Any]]) -> None:
    for index, path, op, value in mutations:
        if not records:
            return
        node = records[index % len(records)]
        for part in path[:-1]:
            if not isinstance(node, dict):
                break
            if not isinstance(node.get(part), dict):
                if op == "drop":
                    break
                node[part] = {}
            node = node[part]
        else:
            if not isinstance(node, dict):
                continue
            if op == "drop":
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value


# -- bytes ------------------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from(SAMPLES), cut=st.floats(min_value=0, max_value=1))
def test_truncated_objects(name: str, cut: float) -> None:
    data = fixture_bytes(name)
    _through_reader(data[: int(len(data) * cut)])
    plain = gzip.decompress(data)
    _through_reader(plain[: int(len(plain) * cut)])


@FUZZ
@given(
    name=st.sampled_from(SAMPLES),
    flips=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1, exclude_max=True), st.integers(1, 255)),
        min_size=1,
        max_size=8,
    ),
    plain=st.booleans(),
)
def test_flipped_bytes(name: str, flips: list[tuple[float, int]], plain: bool) -> None:
    data = bytearray(gzip.decompress(fixture_bytes(name)) if plain else fixture_bytes(name))
    for where, mask in flips:
        data[int(len(data) * where)] ^= mask
    _through_reader(bytes(data))


@FUZZ
@given(
    name=st.sampled_from(SAMPLES),
    splice=st.binary(max_size=64),
    where=st.floats(min_value=0, max_value=1),
)
def test_spliced_garbage(name: str, splice: bytes, where: float) -> None:
    plain = gzip.decompress(fixture_bytes(name))
    at = int(len(plain) * where)
    mutated = plain[:at] + splice + plain[at:]
    _through_reader(mutated)
    _through_reader(gzip.compress(mutated))
    # and as a second gzip member after a valid one
    _through_reader(fixture_bytes(name) + zlib.compress(mutated))


# -- records -------------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from([*SAMPLES, OTRF]), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_records(name: str, mutations: list[Any]) -> None:
    records = fixture_records(name)
    _mutate(records, mutations)
    # Straight into the detector (any Python value), ...
    _check(_detector().process(records, "fuzz"), len(records))
    # ... and through the reader, when the mutation is expressible as JSON at all.
    try:
        data = orjson.dumps({"Records": records})
    except orjson.JSONEncodeError:
        return  # an integer beyond 64 bits: no CloudTrail object can hold it
    _through_reader(gzip.compress(data))


@FUZZ
@given(name=st.sampled_from(SAMPLES), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_records_on_sqlite(name: str, mutations: list[Any]) -> None:
    records = fixture_records(name)
    _mutate(records, mutations)
    try:
        data = orjson.dumps({"Records": records})
    except orjson.JSONEncodeError:
        return
    db = SqliteBaseline(":memory:")
    try:
        _through_reader(data, db)
        _through_reader(data, db)  # the same object again: known tuples, nothing new
    finally:
        db.close()


@FUZZ
@given(records=st.lists(junk, max_size=6))
def test_records_of_any_shape(records: list[Any]) -> None:
    _check(_detector().process(records, "fuzz"), len(records))
    try:
        data = orjson.dumps({"Records": records})
    except orjson.JSONEncodeError:
        return
    _through_reader(data)


@FUZZ
@given(doc=junk)
def test_documents_of_any_shape(doc: Any) -> None:
    try:
        data = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        return
    _through_reader(data)
    _through_reader(gzip.compress(data))


# -- keys and times ---------------------------------------------------------------------------------

VALID_KEY = (
    "prefix/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2024/06/01/"
    "123456789012_CloudTrail_us-east-1_20240601T0305Z_AbC123xyz.json.gz"
)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.floats(min_value=0, max_value=1), st.text(max_size=3), st.integers(0, 3)),
        max_size=4,
    )
)
def test_mutated_keys_are_classified(edits: list[tuple[float, str, int]]) -> None:
    key = VALID_KEY
    for where, text, drop in edits:
        at = int(len(key) * where)
        key = key[:at] + text + key[at + drop :]
    c = classify_key(key)
    assert c.kind in KeyKind
    assert (c.log_key is not None) == (c.kind is KeyKind.LOG)
    if c.kind is KeyKind.INVALID:
        assert c.reason
    delivery_sort_key(key)


event_times = st.builds(
    "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}{}".format,
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from("T "),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".0", ".123456789"]),
    st.sampled_from(["Z", "", "+14:00", "-12:00", "+0530", "-00:01"]),
)


@FUZZ
@given(value=st.one_of(event_times, junk), field=st.sampled_from(["eventTime", "@timestamp"]))
def test_any_event_time_in_a_real_record(value: Any, field: str) -> None:
    records = fixture_records(STRATUS_LAMBDA)
    del records[0]["eventTime"]
    records[0][field] = value
    _check(_detector().process(records, "fuzz"), len(records))


@FUZZ
@given(
    when=st.datetimes(),
    offset=st.integers(-14 * 60, 14 * 60),
    fraction=st.sampled_from(["", ".000", ".123456789"]),
    sep=st.sampled_from("T "),
)
def test_parsed_event_times_are_the_instant_written_and_can_be_rendered(
    when: datetime, offset: int, fraction: str, sep: str
) -> None:
    sign = "+" if offset >= 0 else "-"
    tz = "Z" if offset == 0 else f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    value = (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}{sep}"
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}{fraction}{tz}"
    )
    expected = int(when.replace(microsecond=0, tzinfo=UTC).timestamp()) - offset * 60
    epoch = parse_event_time(value)
    if PLAUSIBLE[0] <= expected < PLAUSIBLE[1]:
        assert epoch == expected, value
    if epoch is not None:
        assert epoch == expected, value
        iso(epoch + 3650 * 86_400)  # an alert, an expiry or a learning end can be shown


@FUZZ
@given(
    value=st.one_of(
        junk,
        st.from_regex(
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{0,12})?(Z|[+-]\d\d:?\d\d)?", fullmatch=True
        ),
    )
)
def test_event_times_parse_or_are_refused(value: Any) -> None:
    epoch = parse_event_time(value)
    assert epoch is None or isinstance(epoch, int)
