"""Every shape in which a new CloudTrail object can be announced, and the function's settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from cloudtrail_anomaly.aws.notifications import (
    RealtimeSettings,
    SettingsError,
    UnrecognizedNotification,
    is_sqs_event,
    parse_event,
    parse_message,
    parse_sqs_record,
)
from cloudtrail_anomaly.ports import ObjectRef

BUCKET = "org-trail-logs"
KEY = "o-abcdefghij/AWSLogs/o-abcdefghij/111111111111/CloudTrail/us-east-1/2024/06/01/111111111111_CloudTrail_us-east-1_20240601T0005Z_abc.json.gz"
ENCODED = "my+prefix/AWSLogs/111111111111/CloudTrail/us-east-1/2024/06/01/111111111111_CloudTrail_us-east-1_20240601T0005Z_abc%3D.json.gz"
DECODED = "my prefix/AWSLogs/111111111111/CloudTrail/us-east-1/2024/06/01/111111111111_CloudTrail_us-east-1_20240601T0005Z_abc=.json.gz"


def s3_event(
    key: str = KEY, name: str = "ObjectCreated:Put", etag: str = "0123abcd"
) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-06-01T00:05:30.000Z",
                "eventName": name,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": key, "size": 1234, "eTag": etag, "sequencer": "0A1B"},
                },
            }
        ]
    }


def sns_envelope(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "5d0c1c9f-0000-0000-0000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:111111111111:trail",
        "Message": json.dumps(message),
        "Timestamp": "2024-06-01T00:05:31.000Z",
    }


def sqs_record(body: dict[str, Any] | str) -> SQSRecord:
    return SQSRecord(
        {
            "messageId": "m-1",
            "receiptHandle": "r-1",
            "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:q",
            "awsRegion": "us-east-1",
        }
    )


EVENTBRIDGE = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111111111111",
    "time": "2024-06-01T00:05:30Z",
    "region": "us-east-1",
    "resources": [f"arn:aws:s3:::{BUCKET}"],
    "detail": {
        "version": "0",
        "bucket": {"name": BUCKET},
        "object": {"key": KEY, "size": 5, "etag": "b1946ac9", "sequencer": "617f08299329d189"},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "111111111111",
        "reason": "PutObject",
    },
}
CLOUDTRAIL_SNS = {"s3Bucket": BUCKET, "s3ObjectKey": [KEY, KEY.replace("abc", "def")]}
TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2024-06-01T00:00:00.000Z",
    "Bucket": BUCKET,
    "RequestId": "X",
    "HostId": "Y",
}


def test_s3_event_direct() -> None:
    n = parse_event(s3_event())
    assert n.objects == [ObjectRef(BUCKET, KEY, "0123abcd")]
    assert not n.skipped


def test_s3_through_sqs() -> None:
    assert parse_sqs_record(sqs_record(s3_event())).objects == [ObjectRef(BUCKET, KEY, "0123abcd")]


def test_s3_through_sns_direct() -> None:
    event = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:111111111111:trail:x",
                "Sns": {
                    "Type": "Notification",
                    "Message": json.dumps(s3_event()),
                    "MessageId": "1",
                },
            }
        ]
    }
    assert parse_event(event).objects == [ObjectRef(BUCKET, KEY, "0123abcd")]


def test_s3_through_sns_then_sqs() -> None:
    record = sqs_record(sns_envelope(s3_event()))
    assert parse_sqs_record(record).objects == [ObjectRef(BUCKET, KEY, "0123abcd")]


def test_sns_raw_delivery_to_sqs_is_the_bare_message() -> None:
    assert parse_sqs_record(sqs_record(CLOUDTRAIL_SNS)).objects == [
        ObjectRef(BUCKET, KEY),
        ObjectRef(BUCKET, KEY.replace("abc", "def")),
    ]


def test_eventbridge_direct_and_through_sqs() -> None:
    expected = [ObjectRef(BUCKET, KEY, "b1946ac9")]
    assert parse_event(EVENTBRIDGE).objects == expected
    assert parse_sqs_record(sqs_record(EVENTBRIDGE)).objects == expected


def test_eventbridge_other_event_types_are_skipped() -> None:
    n = parse_message({**EVENTBRIDGE, "detail-type": "Object Deleted"})
    assert n.objects == []
    assert n.skipped == {"not_object_created": 1}


def test_cloudtrail_own_notification_through_sns_and_sqs() -> None:
    n = parse_sqs_record(sqs_record(sns_envelope(CLOUDTRAIL_SNS)))
    assert [r.key for r in n.objects] == [KEY, KEY.replace("abc", "def")]
    assert all(r.etag == "" for r in n.objects)


def test_s3_test_event_is_skipped_in_every_envelope() -> None:
    assert parse_sqs_record(sqs_record(TEST_EVENT)).skipped == {"s3_test_event": 1}
    assert parse_sqs_record(sqs_record(sns_envelope(TEST_EVENT))).skipped == {"s3_test_event": 1}


def test_non_create_s3_events_are_skipped() -> None:
    n = parse_event(s3_event(name="ObjectRemoved:Delete"))
    assert n.objects == []
    assert n.skipped == {"not_object_created": 1}


def test_every_key_is_url_decoded() -> None:
    event = s3_event(ENCODED)
    event["Records"].append(s3_event(ENCODED.replace("abc", "xyz"))["Records"][0])
    keys = [r.key for r in parse_event(event).objects]
    assert keys == [DECODED, DECODED.replace("abc", "xyz")]  # not only the first record's
    assert (
        parse_message(
            {**EVENTBRIDGE, "detail": {**EVENTBRIDGE["detail"], "object": {"key": ENCODED}}}
        )
        .objects[0]
        .key
        == DECODED
    )  # type: ignore[dict-item]
    assert parse_message({"s3Bucket": BUCKET, "s3ObjectKey": [ENCODED]}).objects[0].key == DECODED


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventSource": "aws:dynamodb"}]}),
        json.dumps({"Records": "x"}),
        json.dumps(
            {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}
        ),
        json.dumps({"s3Bucket": BUCKET, "s3ObjectKey": KEY}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
    ],
)
def test_unknown_shapes_are_errors_not_silence(body: str) -> None:
    with pytest.raises(UnrecognizedNotification):
        parse_sqs_record(sqs_record(body))


def test_is_sqs_event() -> None:
    assert is_sqs_event({"Records": [{"eventSource": "aws:sqs"}]})
    assert not is_sqs_event(s3_event())
    assert not is_sqs_event(EVENTBRIDGE)
    assert not is_sqs_event({"Records": []})


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    s = RealtimeSettings.from_env({"BASELINE_TABLE": "baseline"})
    assert (s.baseline_table, s.ledger_table, s.ledger_ttl_days, s.cache_size) == (
        "baseline",
        "baseline",
        14.0,
        200_000,
    )
    s = RealtimeSettings.from_env(
        {
            "BASELINE_TABLE": "baseline",
            "LEDGER_TABLE": "ledger",
            "LEDGER_TTL_DAYS": "30",
            "BASELINE_CACHE_SIZE": "1000",
            "MAX_OBJECT_BYTES": "1048576",
            "CLOUDTRAIL_ANOMALY_CONFIG": str(config),
        }
    )
    assert (s.ledger_table, s.ledger_ttl_days, s.cache_size, s.max_object_bytes) == (
        "ledger",
        30.0,
        1000,
        1 << 20,
    )
    assert s.config_path == str(config)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "BASELINE_TABLE is not set"),
        ({"BASELINE_TABLE": "  "}, "BASELINE_TABLE is not set"),
        (
            {"BASELINE_TABLE": "bad name!"},
            "BASELINE_TABLE='bad name!' is not a DynamoDB table name",
        ),
        ({"BASELINE_TABLE": "table1", "LEDGER_TABLE": "x"}, "LEDGER_TABLE='x'"),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "two weeks"},
            "LEDGER_TTL_DAYS='two weeks' is not a number",
        ),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "0"},
            "LEDGER_TTL_DAYS='0' must be at least 1",
        ),
        (
            {"BASELINE_TABLE": "table1", "BASELINE_CACHE_SIZE": "1.5"},
            "BASELINE_CACHE_SIZE='1.5' is not an integer",
        ),
        (
            {"BASELINE_TABLE": "table1", "MAX_OBJECT_BYTES": "0"},
            "MAX_OBJECT_BYTES='0' must be at least 1",
        ),
        # int() and float() take Arabic-Indic and other digits; the settings do not
        (
            {"BASELINE_TABLE": "table1", "MAX_OBJECT_BYTES": "\u0661\u0660\u0662\u0664"},
            "MAX_OBJECT_BYTES='\u0661\u0660\u0662\u0664' is not an integer",
        ),
        (
            {"BASELINE_TABLE": "table1", "LEDGER_TTL_DAYS": "\u0663\u0660"},
            "LEDGER_TTL_DAYS='\u0663\u0660' is not a number",
        ),
        (
            {"BASELINE_TABLE": "table1", "CLOUDTRAIL_ANOMALY_CONFIG": "/nope.toml"},
            "CLOUDTRAIL_ANOMALY_CONFIG='/nope.toml'",
        ),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        RealtimeSettings.from_env(env)
    assert message in str(err.value)


# -- the reader's cap in Lambda: from the memory size ---------------------------------------------

MIB = 1 << 20
LAMBDA = {"BASELINE_TABLE": "baseline", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}


def test_in_lambda_the_cap_is_a_quarter_of_the_memory() -> None:
    # Not the CLI's 1 GiB, which a 1,024 MB function cannot inflate (a bomb was OOM-killed).
    assert RealtimeSettings.from_env(LAMBDA).max_object_bytes == 256 * MIB
    env = {**LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}
    assert RealtimeSettings.from_env(env).max_object_bytes == 2560 * MIB
    # Outside Lambda the config's (or the reader's) default stands.
    assert RealtimeSettings.from_env({"BASELINE_TABLE": "baseline"}).max_object_bytes is None


def test_in_lambda_an_explicit_cap_wins_up_to_a_third_of_the_memory(tmp_path: Path) -> None:
    env = {**LAMBDA, "MAX_OBJECT_BYTES": str(1024 * MIB // 3)}
    assert RealtimeSettings.from_env(env).max_object_bytes == 1024 * MIB // 3
    env["MAX_OBJECT_BYTES"] = str(MIB)
    assert RealtimeSettings.from_env(env).max_object_bytes == MIB
    config = tmp_path / "config.toml"
    config.write_text(f"[reader]\nmax_object_bytes = {64 * MIB}\n")
    env = {**LAMBDA, "CLOUDTRAIL_ANOMALY_CONFIG": str(config)}
    assert RealtimeSettings.from_env(env).max_object_bytes == 64 * MIB
    env["MAX_OBJECT_BYTES"] = str(128 * MIB)  # the variable over the config
    assert RealtimeSettings.from_env(env).max_object_bytes == 128 * MIB


def test_in_lambda_a_cap_that_cannot_fit_fails_the_cold_start(tmp_path: Path) -> None:
    env = {**LAMBDA, "MAX_OBJECT_BYTES": str(1024 * MIB // 3 + 1)}
    with pytest.raises(SettingsError) as err:
        RealtimeSettings.from_env(env)
    message = str(err.value)
    assert "MAX_OBJECT_BYTES = 357,913,942 bytes cannot fit in the function's 1,024 MB" in message
    assert "at most a third of the memory, 357,913,941 bytes" in message
    assert "a quarter of the memory (268,435,456 bytes)" in message
    # The same from the config file, which names itself.
    config = tmp_path / "config.toml"
    config.write_text(f"[reader]\nmax_object_bytes = {900 * MIB}\n")
    with pytest.raises(
        SettingsError, match=r"config\.toml: reader\.max_object_bytes = 943,718,400"
    ):
        RealtimeSettings.from_env({**LAMBDA, "CLOUDTRAIL_ANOMALY_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="AWS_LAMBDA_FUNCTION_MEMORY_SIZE='lots'"):
        RealtimeSettings.from_env({**LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"})
