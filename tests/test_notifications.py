"""Every shape in which a new CloudTrail object can be announced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from cloudtrail_anomaly.aws.notifications import (
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
