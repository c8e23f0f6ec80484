"""SNS sink: each alert published to a topic, for e-mail and chat fan-out.

The message is the alert's JSON document verbatim; the subject (what an e-mail subscriber sees)
names the severity and the principal; `severity`, `detector` and `account_id` are message
attributes, so a subscription can filter (say, only `high` and `critical` to the pager).

The boto3 client is a constructor parameter (botocore's own retries handle throttling). A failed
publish stops the batch: what was published is delivered, the rest stays pending. Errors that
will not go away by waiting (missing topic, no permission, KMS key unusable, a parameter SNS
rejects) are reported as a configuration error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ..ports import DeliveryReport, PendingAlert

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 262_144  # SNS: message plus attributes, 256 KiB
MAX_SUBJECT_CHARS = 99  # SNS: printable ASCII, fewer than 100 characters

_CONFIG_ERRORS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "ExpiredToken",
        "InvalidClientTokenId",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidSecurity",
        "KMSAccessDenied",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSOptInRequired",
        "NotFound",
        "UnrecognizedClientException",
    }
)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


class SnsPublisher(Protocol):
    """The part of a boto3 SNS client this sink uses."""

    def publish(
        self,
        *,
        TopicArn: str,
        Message: str,
        Subject: str,
        MessageAttributes: Mapping[str, Any],
    ) -> Mapping[str, Any]: ...


class SnsSink:
    name = "sns"

    def __init__(self, client: SnsPublisher, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def __repr__(self) -> str:
        return f"SnsSink({self.topic_arn!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        for n, alert in enumerate(alerts):
            doc = orjson.loads(alert.document)
            attributes = message_attributes(alert, doc)
            message = alert.document.decode()
            size = len(alert.document) + sum(
                len(k) + len(v["DataType"]) + len(v["StringValue"]) for k, v in attributes.items()
            )
            if size > MAX_MESSAGE_BYTES:
                report.dead_lettered[alert.alert_id] = (
                    f"alert of {size:,} bytes exceeds SNS's {MAX_MESSAGE_BYTES:,}-byte limit"
                )
                continue
            try:
                self.client.publish(
                    TopicArn=self.topic_arn,
                    Message=message,
                    Subject=subject(alert, doc),
                    MessageAttributes=attributes,
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                reason = (
                    f"SNS {code or 'error'}: {exc.response.get('Error', {}).get('Message', '')}"
                )
                if code in _CONFIG_ERRORS:
                    report.config_error = reason
                    log.error("SNS sink misconfigured (%s); alerts stay pending", reason)
                self._keep_pending(report, alerts[n:], reason)
                return report
            except BotoCoreError as exc:  # connection errors, timeouts after botocore's retries
                self._keep_pending(report, alerts[n:], f"SNS unreachable: {exc}")
                return report
            report.delivered.append(alert.alert_id)
            report.counters["events_sent"] += 1
        return report

    @staticmethod
    def _keep_pending(report: DeliveryReport, rest: Sequence[PendingAlert], reason: str) -> None:
        for a in rest:
            if a.alert_id not in report.dead_lettered:
                report.pending[a.alert_id] = reason


def subject(alert: PendingAlert, doc: Mapping[str, Any]) -> str:
    """`[HIGH] <principal> did 2 new action(s) in <account>`, as SNS accepts it."""
    principal = doc.get("principal") or {}
    who = principal.get("name") or principal.get("arn") or "unknown principal"
    # The list may be cut (an alert lists at most 100); the total counts them all.
    total = doc.get("new_actions_total") or len(doc.get("new_actions") or [])
    account = doc.get("account_name") or doc.get("account_id") or "?"
    text = f"[{alert.severity.upper()}] {who} did {total} new action(s) in {account}"
    text = _UNPRINTABLE.sub("?", text).strip()
    if len(text) > MAX_SUBJECT_CHARS:
        text = text[: MAX_SUBJECT_CHARS - 3] + "..."
    return text


def message_attributes(alert: PendingAlert, doc: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    attributes = {
        "severity": alert.severity,
        "alert_id": alert.alert_id,
        "detector": str(doc.get("detector") or ""),
        "account_id": str(doc.get("account_id") or ""),
    }
    # SNS rejects empty attribute values.
    return {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v}
