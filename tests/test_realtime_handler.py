"""End to end in one process: a moto bucket notifies a moto queue, the handler gets those very
messages as an SQS event, and the baseline and ledger live in moto DynamoDB.

moto cannot run Lambda code, so the handler function is called directly. Each `Container` loads
functions/realtime/handler.py afresh, as a new Lambda container would run it (cold start).
"""

from __future__ import annotations

import copy
import gzip
import importlib.util
import itertools
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

import boto3
import orjson
import pytest
from aws_lambda_powertools import Logger, Metrics
from cloudtrail_anomaly.app.realtime_function import RealtimeFunction
from cloudtrail_anomaly.app.settings import RealtimeSettings, SettingsError
from cloudtrail_anomaly.domain.events import parse_event_time
from cloudtrail_anomaly.domain.model import DAY, iso
from cloudtrail_anomaly.ports import DeliveryReport, ObjectRef, PendingAlert, ProcessedObject

from tests.dynamo_tables import BASELINE_TABLE, LEDGER_TABLE
from tests.fakes import ListSink

HANDLER = Path(__file__).parents[1] / "functions" / "realtime" / "handler.py"
FIXTURES = Path(__file__).parent / "fixtures" / "realtime"
ADMIN_USER = FIXTURES / "aws.persistence.iam-create-admin-user.json.gz"
SECRETS = FIXTURES / "aws.credential-access.secretsmanager-retrieve-secrets.json.gz"
BUCKET, QUEUE, TABLE, LEDGER = "trail-logs", "trail-objects", BASELINE_TABLE, LEDGER_TABLE
REGION = "us-east-1"
_modules = itertools.count()


@dataclass
class FakeContext:
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_name: str = "cloudtrail-anomaly-realtime"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:cloudtrail-anomaly-realtime"
    )
    log_group_name: str = "/aws/lambda/cloudtrail-anomaly-realtime"
    log_stream_name: str = "2024/08/01/[$LATEST]abc"
    remaining_ms: list[int] | None = None  # what each call returns, in turn; else 60 s

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms.pop(0) if self.remaining_ms else 60_000


class Container:
    """One Lambda container: the handler module loaded afresh (cold start), its own caches."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        n = next(_modules)
        # A service name of its own: powertools' Logger keeps one stdlib logger per service.
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"realtime-test-{n}")
        spec = importlib.util.spec_from_file_location(f"realtime_handler_{n}", HANDLER)
        assert spec is not None and spec.loader is not None
        self.module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)
        self.sink = ListSink()
        self.module.function.processor.sink = self.sink

    def invoke(self, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
        return self.module.handler(event, context or FakeContext())  # type: ignore[no-any-return]


@pytest.fixture
def cloud(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The function's world on moto (conftest's `aws`): its tables, the trail bucket notifying
    the queue, and its environment."""
    for name, value in {
        "BASELINE_TABLE": TABLE,
        "DYNAMODB_WRITE_CONCURRENCY": "1",  # moto is not thread-safe; DynamoDB is
        "LEDGER_TABLE": LEDGER,
        "POWERTOOLS_METRICS_NAMESPACE": "CloudTrailAnomalyTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]},
            ]
        },
    )
    return {"s3": s3, "sqs": sqs, "ddb": dynamodb, "queue_url": queue_url, "queue_arn": queue_arn}


def records_of(path: Path) -> list[dict[str, Any]]:
    return list(orjson.loads(gzip.decompress(path.read_bytes()))["Records"])


def log_key(account: str, newest: int, uid: str, region: str = REGION) -> str:
    day = iso(newest)[:10].replace("-", "/")
    stamp = iso(newest)[:16].replace("-", "").replace(":", "")
    return (
        f"AWSLogs/{account}/CloudTrail/{region}/{day}/"
        f"{account}_CloudTrail_{region}_{stamp}Z_{uid}.json.gz"
    )


def put_log(cloud: dict[str, Any], records: list[dict[str, Any]], uid: str) -> str:
    account = records[0]["recipientAccountId"]
    newest = max(parse_event_time(r["eventTime"]) or 0 for r in records)
    key = log_key(account, newest, uid)
    body = gzip.compress(orjson.dumps({"Records": records}))
    cloud["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def put_fixture(cloud: dict[str, Any], path: Path, uid: str) -> str:
    cloud["s3"].put_object(
        Bucket=BUCKET, Key=log_key(*_account_and_newest(path), uid), Body=path.read_bytes()
    )
    return log_key(*_account_and_newest(path), uid)


def _account_and_newest(path: Path) -> tuple[str, int]:
    records = records_of(path)
    return records[0]["recipientAccountId"], max(
        parse_event_time(r["eventTime"]) or 0 for r in records
    )


def history_for(path: Path, days_before: int = 30) -> list[dict[str, Any]]:
    """The attacker's principal doing something ordinary a month earlier: it is past its
    learning period when the fixture's actions arrive, so they alert."""
    first = records_of(path)[0]
    t = (parse_event_time(first["eventTime"]) or 0) - days_before * DAY
    record = copy.deepcopy(first)
    record.update(
        eventName="GetUser", eventSource="iam.amazonaws.com", eventTime=iso(t), eventID="h-1"
    )
    return [record]


def receive(cloud: dict[str, Any]) -> dict[str, Any]:
    """Everything on the queue, as the SQS event Lambda's event source mapping would send."""
    messages: list[dict[str, Any]] = []
    while True:
        got = cloud["sqs"].receive_message(QueueUrl=cloud["queue_url"], MaxNumberOfMessages=10)
        if not got.get("Messages"):
            break
        messages.extend(got["Messages"])
        for m in got["Messages"]:
            cloud["sqs"].delete_message(
                QueueUrl=cloud["queue_url"], ReceiptHandle=m["ReceiptHandle"]
            )
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": cloud["queue_arn"],
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def emf(out: str) -> dict[str, float]:
    """The EMF metrics printed by powertools, summed by name."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = orjson.loads(line)
        for spec in doc["_aws"]["CloudWatchMetrics"]:
            for metric in spec["Metrics"]:
                value = doc[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals


def items(cloud: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return list(cloud["ddb"].scan(TableName=table)["Items"])


def test_end_to_end_alerts_and_state(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    history = put_log(cloud, history_for(ADMIN_USER), "history")
    first = receive(cloud)  # moto's s3:TestEvent from the configuration, then the history object
    assert container.invoke(first) == {"batchItemFailures": []}
    assert container.sink.alerts == []

    key = put_fixture(cloud, ADMIN_USER, "attack")
    assert container.invoke(receive(cloud)) == {"batchItemFailures": []}

    (alert,) = container.sink.alerts
    assert alert["account_id"] == "229654561268"
    assert alert["principal"]["arn"] == "arn:aws:iam::229654561268:user/christophe"
    assert sorted(e["action"] for e in alert["new_actions"]) == [
        "iam.amazonaws.com:AttachUserPolicy",
        "iam.amazonaws.com:CreateAccessKey",
        "iam.amazonaws.com:CreateUser",
    ]
    assert alert["source_objects"] == [f"s3://{BUCKET}/{key}"]

    baseline = items(cloud, TABLE)
    tuples = {i["sk"]["S"]: i for i in baseline if i["sk"]["S"].startswith("A#iam")}
    assert set(tuples) == {
        "A#iam.amazonaws.com:GetUser",
        "A#iam.amazonaws.com:AttachUserPolicy",
        "A#iam.amazonaws.com:CreateAccessKey",
        "A#iam.amazonaws.com:CreateUser",
    }
    created = tuples["A#iam.amazonaws.com:CreateUser"]
    assert created["pk"]["S"] == "P#229654561268#arn:aws:iam::229654561268:user/christophe"
    assert int(created["expires_at"]["N"]) == int(created["last_seen"]["N"]) + 90 * DAY

    ledger = items(cloud, LEDGER)
    assert sorted(i["key"]["S"] for i in ledger) == sorted([key, history])
    entry = next(i for i in ledger if i["key"]["S"] == key)
    assert entry["alerts"] == {"N": "1"} and entry["records"] == {"N": "3"}
    assert int(entry["expires_at"]["N"]) == int(entry["processed_at"]["N"]) + 14 * DAY
    assert entry["processed_at"] == {"N": str(_account_and_newest(ADMIN_USER)[1])}

    metrics = emf(capsys.readouterr().out)
    assert metrics["objects"] == 2
    assert metrics["objects_skipped.s3_test_event"] == 1
    assert metrics["records"] == 4
    assert metrics["new_tuples"] == 4
    assert metrics[f"alerts.{alert['severity']}"] == 1
    assert metrics["dynamodb_requests"] > 0
    assert metrics["lag_seconds"] > 0


def test_redelivered_object_alerts_once_and_costs_one_read(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    put_log(cloud, history_for(SECRETS), "history")
    container.invoke(receive(cloud))
    put_fixture(cloud, SECRETS, "attack")
    event = receive(cloud)
    capsys.readouterr()

    assert container.invoke(event) == {"batchItemFailures": []}
    assert len(container.sink.alerts) == 1
    capsys.readouterr()

    assert container.invoke(event) == {"batchItemFailures": []}  # SQS delivered it again
    assert len(container.sink.alerts) == 1
    metrics = emf(capsys.readouterr().out)
    assert metrics["objects_duplicate"] == 1
    assert metrics["dynamodb_requests"] == 1  # the ledger read, nothing else
    assert "objects" not in metrics

    other = Container(monkeypatch)  # another container, cold: the ledger still knows
    assert other.invoke(event) == {"batchItemFailures": []}
    assert other.sink.alerts == []


def test_two_concurrent_invocations_of_one_object_alert_once(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    Container(monkeypatch).invoke(receive(cloud))  # the test event
    put_log(cloud, history_for(ADMIN_USER), "history")
    Container(monkeypatch).invoke(receive(cloud))
    key = put_fixture(cloud, ADMIN_USER, "attack")
    ref = ObjectRef(BUCKET, key)
    settings = RealtimeSettings.from_env({"BASELINE_TABLE": TABLE, "LEDGER_TABLE": LEDGER})
    both_checked = threading.Barrier(2)

    class RacingLedger:
        """Both invocations pass the ledger check before either records: the worst case."""

        def __init__(self, inner: Any) -> None:
            self.inner, self.requests = inner, 0

        def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
            found = self.inner.get(bucket, key, etag)
            both_checked.wait(timeout=10)
            return found  # type: ignore[no-any-return]

        def record(self, entry: ProcessedObject) -> None:
            self.inner.record(entry)

    sinks = [ListSink(), ListSink()]
    functions = []
    for n, sink in enumerate(sinks):
        fn = RealtimeFunction.build(
            settings,
            s3=cloud["s3"],
            dynamodb=Serialized(cloud["ddb"]),
            logger=Logger(service=f"race-{n}"),
            metrics=Metrics(namespace="race"),
            sink=sink,
        )
        fn.processor.ledger = RacingLedger(fn.processor.ledger)
        functions.append(fn)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda fn: fn.processor.process(ref), functions))
    assert [o.status for o in outcomes] == ["processed", "processed"]
    assert sum(len(s.alerts) for s in sinks) == 1
    assert sum(o.stats["new_tuples"] for o in outcomes) == 3  # each claimed by one of them


class Serialized:
    """Each call atomic, as each DynamoDB request is; moto's backend is not thread-safe."""

    lock = threading.Lock()

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(**kwargs: Any) -> Any:
            with self.lock:
                return method(**kwargs)

        return call


def test_a_poison_object_fails_only_its_own_message(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    container.invoke(receive(cloud))  # the test event
    good = put_fixture(cloud, SECRETS, "good")
    account, newest = _account_and_newest(SECRETS)
    poison = log_key(account, newest, "poison")
    cloud["s3"].put_object(Bucket=BUCKET, Key=poison, Body=b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    event = receive(cloud)
    by_key = {
        unquote_plus(orjson.loads(r["body"])["Records"][0]["s3"]["object"]["key"]): r
        for r in event["Records"]
    }
    capsys.readouterr()

    response = container.invoke(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": by_key[poison]["messageId"]}]}
    assert [i["key"]["S"] for i in items(cloud, LEDGER)] == [good]  # the poison is not recorded
    metrics = emf(capsys.readouterr().out)
    assert metrics["objects_failed.corrupt_gzip"] == 1
    assert metrics["objects"] == 1


def test_digests_are_skipped_and_foreign_keys_reported_without_failing(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    digest = "AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/06/01/111111111111_CloudTrail-Digest_us-east-1_trail_us-east-1_20240601T000000Z.json.gz"
    for key in (digest, "exports/some file.json"):
        cloud["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    capsys.readouterr()
    assert container.invoke(receive(cloud)) == {"batchItemFailures": []}
    metrics = emf(capsys.readouterr().out)
    assert metrics["objects_skipped.digest"] == 1
    assert metrics["objects_skipped.s3_test_event"] == 1
    assert metrics["objects_invalid"] == 1
    assert items(cloud, LEDGER) == []


def test_direct_s3_invocation_and_cloudtrail_sns_notification(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = Container(monkeypatch)
    receive(cloud)
    key = put_fixture(cloud, SECRETS, "direct")
    etag = cloud["s3"].head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    direct = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag}},
            }
        ]
    }
    assert container.invoke(direct) == {"batchItemFailures": []}
    assert len(items(cloud, LEDGER)) == 1
    # CloudTrail's own notification names no ETag: the object's is read from GetObject.
    sns = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {
                    "Message": orjson.dumps({"s3Bucket": BUCKET, "s3ObjectKey": [key]}).decode()
                },
            }
        ]
    }
    assert container.invoke(sns) == {"batchItemFailures": []}
    assert len(items(cloud, LEDGER)) == 1


def test_a_direct_invocation_that_fails_raises_for_a_retry(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = Container(monkeypatch)
    account, newest = _account_and_newest(SECRETS)
    key = log_key(account, newest, "broken")
    cloud["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"not json at all")
    with pytest.raises(Exception, match="1 object"):
        container.invoke({"s3Bucket": BUCKET, "s3ObjectKey": [key]})


def test_cold_start_names_the_missing_variable(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BASELINE_TABLE")
    with pytest.raises(SettingsError, match="BASELINE_TABLE is not set"):
        Container(monkeypatch)


def test_alerts_that_could_not_be_delivered_stay_pending_and_go_out_later(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    class SinkDown:
        name = "down"

        def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
            return DeliveryReport(pending={a.alert_id: "endpoint unreachable" for a in alerts})

    container = Container(monkeypatch)
    put_log(cloud, history_for(ADMIN_USER), "history")
    container.invoke(receive(cloud))
    key = put_fixture(cloud, ADMIN_USER, "attack")
    event = receive(cloud)
    container.module.function.processor.sink = SinkDown()

    # The alert is staged in the outbox with its claims: the message succeeds, nothing is lost.
    assert container.invoke(event) == {"batchItemFailures": []}
    assert key in [i["key"]["S"] for i in items(cloud, LEDGER)]
    pending = [i for i in items(cloud, TABLE) if i["pk"]["S"] == "OUTBOX"]
    assert [i["sk"]["S"][:2] for i in pending] == ["P#"]
    # A redelivery of the message is a duplicate and costs nothing...
    assert container.invoke(event) == {"batchItemFailures": []}
    assert container.sink.alerts == []
    # ...and once the sink is back, a new container delivers what is pending, exactly once.
    later = Container(monkeypatch)
    put_log(cloud, history_for(ADMIN_USER), "later")
    later.invoke(receive(cloud))
    (alert,) = later.sink.alerts
    assert len(alert["new_actions"]) == 3
    later.invoke(receive(cloud))
    assert len(later.sink.alerts) == 1


def test_an_object_deleted_before_it_was_read_is_skipped(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    receive(cloud)
    key = put_fixture(cloud, SECRETS, "gone")
    event = receive(cloud)
    cloud["s3"].delete_object(Bucket=BUCKET, Key=key)
    capsys.readouterr()
    assert container.invoke(event) == {"batchItemFailures": []}
    assert emf(capsys.readouterr().out)["objects_skipped.object_gone"] == 1


def test_an_sqs_batch_costs_one_ledger_read_and_one_write(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    container.invoke(receive(cloud))  # the test event
    keys = []
    for n in range(6):
        records = history_for(SECRETS, days_before=30 - n)
        records[0]["eventID"] = f"h-{n}"
        keys.append(put_log(cloud, records, f"batch{n}"))
    event = receive(cloud)
    event["Records"].append({**event["Records"][0], "messageId": "poison", "body": "not json"})
    ledger = container.module.function.processor.ledger
    before = ledger.requests
    capsys.readouterr()

    assert container.invoke(event) == {"batchItemFailures": [{"itemIdentifier": "poison"}]}
    assert ledger.requests - before == 2  # one BatchGetItem, one BatchWriteItem, six objects
    assert sorted(i["key"]["S"] for i in items(cloud, LEDGER)) == sorted(keys)
    assert emf(capsys.readouterr().out)["objects"] == 6

    before = ledger.requests
    event["Records"].pop()
    assert container.invoke(event) == {"batchItemFailures": []}  # the batch redelivered
    assert ledger.requests - before == 1
    assert emf(capsys.readouterr().out)["objects_duplicate"] == 6


def test_messages_left_when_the_invocation_runs_out_of_time_are_handed_back(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    container = Container(monkeypatch)
    container.invoke(receive(cloud))  # the test event
    keys = [put_log(cloud, history_for(SECRETS, days_before=30 - n), f"late{n}") for n in range(3)]
    event = receive(cloud)
    ids = [r["messageId"] for r in event["Records"]]
    capsys.readouterr()
    # 45 s left for the first message, then 29 s: under MIN_REMAINING_SECONDS' 30 s default.
    context = FakeContext(remaining_ms=[45_000, 29_000, 29_000])
    result = container.invoke(event, context)
    assert result == {"batchItemFailures": [{"itemIdentifier": i} for i in ids[1:]]}
    metrics = emf(capsys.readouterr().out)
    assert (metrics["objects"], metrics["messages_deferred"]) == (1, 2)
    assert [i["key"]["S"] for i in items(cloud, LEDGER)] == [keys[0]]  # the rest not started

    retry = {"Records": [r for r in event["Records"] if r["messageId"] in ids[1:]]}
    assert container.invoke(retry) == {"batchItemFailures": []}
    assert sorted(i["key"]["S"] for i in items(cloud, LEDGER)) == sorted(keys)


def test_an_sqs_batch_writes_its_refreshes_in_one_transaction_at_the_end(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = Container(monkeypatch)
    container.invoke(receive(cloud))  # the test event
    put_log(cloud, history_for(SECRETS, days_before=40), "first")
    container.invoke(receive(cloud))  # claims the action and the region
    # The same actions 8, 16 and 24 days later (each past the 7.5-day refresh), in one batch.
    for n in (1, 2, 3):
        put_log(cloud, history_for(SECRETS, days_before=40 - 8 * n), f"later{n}")
    baseline = container.module.function.baseline
    before = Counter(baseline.request_counts)
    assert container.invoke(receive(cloud)) == {"batchItemFailures": []}
    # The container knows the tuples (no read); the three objects' refreshes of the same two
    # tuples were held and written once, together, when the batch ended.
    assert Counter(baseline.request_counts) - before == {"TransactWriteItems": 1}
    assert baseline.deferred == 0
    stored = {
        i["sk"]["S"]: int(i["last_seen"]["N"]) for i in items(cloud, TABLE) if "last_seen" in i
    }
    newest = parse_event_time(history_for(SECRETS, days_before=16)[0]["eventTime"])
    assert set(stored.values()) == {newest}
