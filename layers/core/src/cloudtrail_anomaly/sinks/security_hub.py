"""AWS Security Hub sink: each alert imported as an ASFF finding (`formats/asff.py`).

`BatchImportFindings` takes at most 100 findings and 6 MB a call, and answers per finding: a
finding it failed is dead-lettered with Security Hub's code and message, unless the code says to
try again later (throttling, an internal error): then it stays pending. The finding's `Id` is the
alert's id, so an alert sent twice updates one finding.

Whole-call errors: an invalid request (`InvalidInputException`) is split in halves until the
finding it is about is alone, and that one is dead-lettered with the reason; no permission,
Security Hub not enabled in the account or region (`InvalidAccessException`), or an unknown
account are configuration errors (everything stays pending, logged once); throttling, internal
errors and an unreachable endpoint leave the rest pending for the next round. The boto3 client
is a constructor parameter (botocore's own retries handle throttling first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ..formats.asff import to_asff
from ..ports import DeliveryReport, PendingAlert
from . import keep_pending, parse_flag, send_in_order, sized_batches

log = logging.getLogger(__name__)

MAX_FINDINGS_PER_CALL = 100
MAX_REQUEST_BYTES = 5_500_000  # Security Hub: 6 MB a request, with room for the envelope
MAX_FINDING_BYTES = 240 * 1024  # Security Hub: 240 KB a finding

_CONFIG_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "InvalidAccessException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ResourceNotFoundException",
    }
)
_TRY_AGAIN = frozenset(
    {
        "InternalError",
        "InternalException",
        "InternalFailure",
        "ServiceUnavailable",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
    }
)


class FindingsImporter(Protocol):
    """The part of a boto3 Security Hub client this sink uses."""

    def batch_import_findings(
        self, *, Findings: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any]: ...


class SecurityHubSink:
    name = "security_hub"

    def __init__(
        self,
        client: FindingsImporter,
        *,
        home_account: str,
        region: str,
        member_accounts: bool = False,
        partition: str = "aws",
    ) -> None:
        self.client = client
        self.home_account = home_account
        self.region = region
        self.member_accounts = member_accounts
        self.partition = partition
        self._logged_config_error = False

    def __repr__(self) -> str:
        return f"SecurityHubSink({self.home_account!r}, {self.region!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        ready: list[tuple[str, dict[str, Any], int]] = []
        for alert in alerts:
            try:
                finding = to_asff(
                    orjson.loads(alert.document),
                    home_account=self.home_account,
                    region=self.region,
                    member_accounts=self.member_accounts,
                    partition=self.partition,
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                report.dead_lettered[alert.alert_id] = f"cannot make an ASFF finding: {exc!r}"
                continue
            size = len(orjson.dumps(finding))
            if size > MAX_FINDING_BYTES:
                report.dead_lettered[alert.alert_id] = (
                    f"finding of {size:,} bytes exceeds Security Hub's {MAX_FINDING_BYTES:,}"
                )
                continue
            ready.append((alert.alert_id, finding, size))
        send_in_order(
            sized_batches(ready, MAX_FINDINGS_PER_CALL, MAX_REQUEST_BYTES), self._send, report
        )
        return report

    def _send(self, batch: list[tuple[str, dict[str, Any], int]], report: DeliveryReport) -> bool:
        """Import one batch; False when the round must stop (everything left stays pending)."""
        report.counters["requests"] += 1
        try:
            answer = self.client.batch_import_findings(Findings=[f for _, f, _ in batch])
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            reason = f"Security Hub {code or 'error'}: {error.get('Message', '')}"
            if code == "InvalidInputException" and len(batch) > 1:
                half = len(batch) // 2
                if not self._send(batch[:half], report):
                    keep_pending(batch[half:], report)
                    return False
                return self._send(batch[half:], report)
            if code == "InvalidInputException":
                report.dead_lettered[batch[0][0]] = f"Security Hub refused the finding: {reason}"
                return True
            if code in _CONFIG_ERRORS:
                report.config_error = reason
                if not self._logged_config_error:
                    log.error("Security Hub sink misconfigured (%s); alerts stay pending", reason)
                    self._logged_config_error = True
            for alert_id, _, _ in batch:
                report.pending[alert_id] = reason
            return False
        except BotoCoreError as exc:
            for alert_id, _, _ in batch:
                report.pending[alert_id] = f"Security Hub unreachable: {exc}"
            return False
        failed = {str(f.get("Id")): f for f in answer.get("FailedFindings") or []}
        for alert_id, _, _ in batch:
            failure = failed.get(alert_id)
            if failure is None:
                report.delivered.append(alert_id)
                report.counters["events_sent"] += 1
                continue
            code = str(failure.get("ErrorCode") or "")
            reason = f"Security Hub {code}: {failure.get('ErrorMessage') or ''}"
            if code in _TRY_AGAIN:
                report.pending[alert_id] = reason
            else:
                report.dead_lettered[alert_id] = f"Security Hub refused the finding: {reason}"
            report.counters["findings_failed"] += 1
        return True


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "")
    value = parse_flag(raw) if raw.strip() else False
    if value is None:
        raise SecurityHubSettingsError(f"{name}={raw!r}: expected true or false")
    return value


class SecurityHubSettingsError(ValueError):
    """A bad SECURITY_HUB_* setting; the message names it."""


def security_hub_sink_from_env(
    env: Mapping[str, str], boto3_client: Callable[..., Any]
) -> SecurityHubSink | None:
    """The sink the deployment asks for: `SECURITY_HUB_FINDINGS=true` turns it on, findings are
    imported in `AWS_REGION` for `SECURITY_HUB_ACCOUNT_ID` (the deployment's account) and, with
    `SECURITY_HUB_MEMBER_ACCOUNTS=true`, belong to the account the actions happened in."""
    if not _flag(env, "SECURITY_HUB_FINDINGS"):
        return None
    account = env.get("SECURITY_HUB_ACCOUNT_ID", "").strip()
    if not (len(account) == 12 and account.isdigit()):
        raise SecurityHubSettingsError(
            f"SECURITY_HUB_ACCOUNT_ID must be the deployment's 12-digit account id, got {account!r}"
        )
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    if not region:
        raise SecurityHubSettingsError("AWS_REGION is not set")
    member = _flag(env, "SECURITY_HUB_MEMBER_ACCOUNTS")
    return SecurityHubSink(
        boto3_client("securityhub", region_name=region),
        home_account=account,
        region=region,
        member_accounts=member,
        partition=env.get("AWS_PARTITION", "aws"),
    )
