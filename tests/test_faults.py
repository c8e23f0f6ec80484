"""The fault suite: what a user is promised ("nothing lost") tried against the deployed stack
(tests/deployed.py) with the faults an operator and an attacker meet. Each scenario runs the
real-time function through the stack's queue and, where the scenario needs it, the hourly
reconciliation, then counts where every expected alert ended up: at the local Splunk HEC once,
twice (only where the documented at-least-once case applies), still pending, dead-lettered,
or lost. `make faults` runs the suite alone and writes the table to docs/reliability.md; it
runs in `make test` (and CI) too.

The trail is tests/trail.py's: a history object, then 20 objects each with one new action of
its own user, so every object means exactly one alert.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
import time_machine
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox

from tests.builders import user_record
from tests.deployed import REGION, DeployedStack, Fault, Packaged, Poller, deployed
from tests.test_deployed import put_objects, queue_missed_rows, scheduled
from tests.trail import DiskBucket, at, log_key, log_object, twenty_files

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
LEASE_S = 300  # the Deliverer's lease: a crashed sender's alerts wait this long


@dataclass
class Outcome:
    scenario: str
    fault: str
    expected: int  # alerts the trail holds
    at_hec_once: int
    at_hec_twice: int
    pending: int  # still in the outbox after recovery
    dead_lettered: int  # refused by HEC, kept with its reason
    lost: int  # expected, and nowhere
    in_logs: int  # alert documents printed to a function's log instead of sent
    dlq_messages: int  # notifications in the queue's dead-letter queue
    recovery: str


RESULTS: list[Outcome] = []
# Every scenario below, by the name its row has in docs/reliability.md.
SCENARIOS = (
    "hec-down",
    "hec-busy",
    "hec-429",
    "hec-slow",
    "hec-403",
    "hec-400",
    "crash-before-claim",
    "crash-after-claim-before-delivery",
    "crash-after-delivery-before-marking",
    "notified-3x-concurrently",
    "alert-over-400kb",
    "gzip-bomb",
    "object-deleted",
    "lost-notifications-and-outage",
)


def test_the_reliability_doc_has_a_row_for_every_scenario() -> None:
    rows = [
        line.split("|")[1].strip()
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| scenario")
    ]
    assert sorted(rows) == sorted(SCENARIOS), "run `make faults` to write docs/reliability.md"


@pytest.fixture(scope="module", autouse=True)
def reliability_table() -> Iterator[None]:
    """After the module: docs/reliability.md from what the scenarios measured, when asked
    (`make faults` sets WRITE_RELIABILITY=1)."""
    yield
    if os.environ.get("WRITE_RELIABILITY") == "1" and RESULTS:
        DOC.write_text(render(RESULTS))


def render(results: list[Outcome]) -> str:
    head = (
        "# Reliability: faults and what became of the alerts\n\n"
        "Produced by the fault suite (`make faults`, tests/test_faults.py) against the deployed\n"
        "configuration: the packaged CloudFormation template created on moto, the handlers\n"
        "loaded as Lambda loads them with that template's environment and checked against its\n"
        "IAM roles, S3 notifications through the stack's queue, a local Splunk HEC. Each\n"
        "scenario's trail holds `expected` alerts; the columns say where each one ended up\n"
        "after the recovery the last column describes. `twice` is the documented\n"
        "at-least-once case (HEC indexed a batch whose answer the sender never saw): Splunk\n"
        "searches dedupe on `alert_id`.\n\n"
    )
    columns = [
        "scenario",
        "fault",
        "expected",
        "at_hec_once",
        "at_hec_twice",
        "pending",
        "dead_lettered",
        "lost",
        "in_logs",
        "dlq_messages",
        "recovery",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in sorted(results, key=lambda r: r.scenario):
        row = asdict(r)
        lines.append("| " + " | ".join(str(row[c]) for c in columns) + " |")
    return head + "\n".join(lines) + "\n"


# --- the scenarios' common parts ---------------------------------------------------------


@pytest.fixture
def stack(
    packaged: Packaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeployedStack]:
    with deployed(packaged, tmp_path, monkeypatch) as s:
        yield s


@dataclass
class Trail:
    disk: DiskBucket
    keys: list[str]  # the log objects in delivery order (the history object first)
    expected: set[str]  # the alert ids they hold (local mode's answer)

    @property
    def logs(self) -> list[str]:
        """The 20 objects after the history, which the fixture has processed already: SQS
        does not keep order, and a history object read after the objects that follow it
        would make other (legitimate) alerts than local mode's."""
        return self.keys[1:]


@pytest.fixture
def trail(stack: DeployedStack, tmp_path: Path) -> Trail:
    disk = DiskBucket(tmp_path / "bucket")
    keys = [k for k, _, _ in twenty_files(disk)]
    logs = tmp_path / "logs"
    for key in keys:
        (logs / key).parent.mkdir(parents=True, exist_ok=True)
        (logs / key).write_bytes((disk.root / key).read_bytes())
    expected = expected_alerts(stack, logs)
    assert len(expected) == 20  # one per object after the history
    put_objects(stack, disk, keys[:1])
    Poller(stack).drain()
    return Trail(disk, keys, expected)


def expected_alerts(stack: DeployedStack, root: Path) -> set[str]:
    """The alert ids local mode finds in the same objects with the deployed function's config
    (the function zip's config.toml): what the deployed path must deliver, by id."""
    import subprocess
    import sys
    import zipfile

    config = root.parent / "function-config.toml"
    with zipfile.ZipFile(stack.packaged.build / "function-realtime.zip") as zf:
        config.write_bytes(zf.read("config.toml"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtrail_anomaly.app.cli.main",
            "replay",
            str(root),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {orjson.loads(line)["alert_id"] for line in done.stdout.splitlines() if line.strip()}


def outbox(stack: DeployedStack) -> DynamoDbOutbox:
    return DynamoDbOutbox(boto3.client("dynamodb", region_name=REGION), stack.table)


def pending(stack: DeployedStack) -> list[str]:
    return [a.alert_id for a in outbox(stack).pending()]


def alerts_in_logs(captured: str) -> int:
    count = 0
    for line in captured.splitlines():
        if line.startswith("{") and '"alert_id"' in line:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict) and "alert_id" in doc and "principal" in doc:
                count += 1
    return count


def outcome(
    stack: DeployedStack,
    capsys: pytest.CaptureFixture[str],
    scenario: str,
    fault: str,
    expected: set[str],
    recovery: str,
) -> Outcome:
    """Where each expected alert ended up; recorded for docs/reliability.md."""
    assert scenario in SCENARIOS
    counts = stack.hec.alert_counts()
    captured = capsys.readouterr()
    left = set(pending(stack))
    dead = {a.alert_id for a, _ in outbox(stack).dead_letters()}
    unexpected = set(counts) - expected
    assert not unexpected, f"alerts local mode does not find: {sorted(unexpected)}"
    result = Outcome(
        scenario=scenario,
        fault=fault,
        expected=len(expected),
        at_hec_once=sum(1 for i in expected if counts.get(i) == 1),
        at_hec_twice=sum(1 for i in expected if counts.get(i) == 2),
        pending=len(left & expected),
        dead_lettered=len(dead & expected),
        lost=len(expected - set(counts) - left - dead),
        in_logs=alerts_in_logs(captured.out + captured.err),
        dlq_messages=Poller(stack).queue_depth(stack.dlq_url),
        recovery=recovery,
    )
    RESULTS.append(result)
    assert stack.denied() == [], "a call the deployed roles do not allow"
    return result


def hourly(stack: DeployedStack, disk: DiskBucket, missed: list[str] | None = None) -> Any:
    """The hourly reconciliation, a new container, on the schedule's event."""
    if missed:
        queue_missed_rows(stack, disk, sorted(missed))
    return stack.load("reconcile").invoke(scheduled())


def crash_when(
    service: str, operation: str, test: Callable[[dict[str, Any]], bool] = lambda p: True
) -> Callable[[str, str, dict[str, Any]], bool]:
    return lambda s, o, p: s == service and o == operation and test(p)


def stages_an_alert(params: dict[str, Any]) -> bool:
    """A claim transaction that stages an alert in the outbox (pk OUTBOX)."""
    return "OUTBOX" in json.dumps(params, default=str)


# --- Splunk HEC faults ---------------------------------------------------------------------


def everything(result: Outcome) -> tuple[int, int, int, int, int]:
    return (result.at_hec_once, result.pending, result.lost, result.in_logs, result.dlq_messages)


def test_hec_down_for_the_whole_real_time_run(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """HEC answers 503 to everything (no Retry-After) while 20 objects arrive: the first
    delivery round spends the deployed 30 s retry budget (so this test takes over 30 s), then
    the breaker stops delivery for the invocation; every object is processed and recorded, no
    message is handed back; the hourly run after the outage sends each alert once."""
    stack.hec.faults.status_first = 10**6
    put_objects(stack, trail.disk, trail.logs)
    poller = Poller(stack)
    started = time.monotonic()
    poller.drain()
    spent = time.monotonic() - started
    assert poller.queue_depth() == 0, "objects handed back or left behind"
    assert spent < 60, f"the run waited on delivery for {spent:.0f} s"
    assert set(pending(stack)) == trail.expected and stack.hec.alert_counts() == {}
    stack.hec.faults.status_first = 0
    hourly(stack, trail.disk)
    result = outcome(
        stack, capsys, "hec-down", "HEC 503 to every request", trail.expected, "hourly run"
    )
    assert everything(result) == (20, 0, 0, 0, 0)


def test_hec_busy_then_back(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.hec.faults.busy_first = 3
    put_objects(stack, trail.disk, trail.logs)
    Poller(stack).drain()
    result = outcome(
        stack,
        capsys,
        "hec-busy",
        "HEC 503 code 9 to the first 3 requests",
        trail.expected,
        "backoff within the call",
    )
    assert everything(result) == (20, 0, 0, 0, 0)


def test_hec_asks_to_come_back_later(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """429 with Retry-After beyond the budget: nothing waits; a later invocation sends."""
    faults = stack.hec.faults
    faults.status_first, faults.status, faults.retry_after = 10**6, 429, 3600
    faults.status_body = {"text": "Too many requests", "code": 9}
    put_objects(stack, trail.disk, trail.logs[:10])
    Poller(stack).drain()
    assert stack.hec.alert_counts() == {}
    faults.status_first = 0
    put_objects(stack, trail.disk, trail.logs[10:])  # their invocation sends the backlog too
    Poller(stack).drain()
    result = outcome(
        stack,
        capsys,
        "hec-429",
        "HEC 429 with Retry-After: 3600",
        trail.expected,
        "the next invocation with alerts (new container)",
    )
    assert everything(result) == (20, 0, 0, 0, 0)


def test_hec_slower_than_the_read_timeout(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first request is indexed but answered after the deployed 30 s read timeout (so
    this test takes over 30 s): the sender cannot know, retries, and that batch arrives
    twice; nothing is lost."""
    faults = stack.hec.faults
    faults.lose_response_first, faults.stall_seconds = 1, 31.0
    put_objects(stack, trail.disk, trail.logs)
    Poller(stack).drain()
    hourly(stack, trail.disk)
    result = outcome(
        stack,
        capsys,
        "hec-slow",
        "HEC indexes, then answers after the read timeout",
        trail.expected,
        "retried; that batch twice (dedup on alert_id)",
    )
    assert (result.lost, result.pending, result.in_logs, result.dlq_messages) == (0, 0, 0, 0)
    assert result.at_hec_once + result.at_hec_twice == 20 and result.at_hec_twice >= 1


def test_hec_token_refused_then_fixed(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """403 (a revoked token: configuration): nothing retried, all pending; once the token is
    fixed the hourly run sends everything once."""
    faults = stack.hec.faults
    faults.status_first, faults.status = 10**6, 403
    faults.status_body = {"text": "Invalid token", "code": 4}
    put_objects(stack, trail.disk, trail.logs)
    Poller(stack).drain()
    assert len(stack.hec.event_requests()) <= 3, "a refused token is not hammered"
    faults.status_first = 0
    hourly(stack, trail.disk)
    result = outcome(
        stack, capsys, "hec-403", "HEC 403 invalid token", trail.expected, "hourly run after fix"
    )
    assert everything(result) == (20, 0, 0, 0, 0)


def test_hec_refuses_one_event(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """400 code 6 at one event: that alert is dead-lettered with HEC's reason, the others go."""
    refused = sorted(trail.expected)[7]
    stack.hec.faults.bad_alert_ids = {refused}
    put_objects(stack, trail.disk, trail.logs)
    Poller(stack).drain()
    ((dead, reason),) = outbox(stack).dead_letters()
    assert dead.alert_id == refused and reason
    result = outcome(
        stack, capsys, "hec-400", "HEC 400 code 6 at one event", trail.expected, "none needed"
    )
    assert (result.at_hec_once, result.dead_lettered, result.lost, result.pending) == (19, 1, 0, 0)


# --- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "after", "recovery"),
    [
        ("before-claim", False, "the message is retried by a new container"),
        (
            "after-claim-before-delivery",
            True,
            "retried by a new container: claims found, the staged alert sent",
        ),
    ],
)
def test_a_container_dies(
    stack: DeployedStack,
    trail: Trail,
    capsys: pytest.CaptureFixture[str],
    point: str,
    after: bool,
    recovery: str,
) -> None:
    fault = Fault(crash_when("dynamodb", "TransactWriteItems", stages_an_alert), after=after)
    stack.recorder.faults.append(fault)
    put_objects(stack, trail.disk, trail.logs)
    poller = Poller(stack)
    poller.drain()
    assert fault.fired and poller.crashes == 1
    result = outcome(
        stack, capsys, f"crash-{point}", f"container dies {point}", trail.expected, recovery
    )
    assert everything(result) == (20, 0, 0, 0, 0)


def test_a_container_dies_after_delivery_before_marking(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """HEC has the alerts, the outbox does not know: they stay leased for the lease's 300 s,
    then the hourly run sends them again (the documented duplicate)."""
    hec = stack.hec

    def after_delivery(service: str, operation: str, params: dict[str, Any]) -> bool:
        return service == "dynamodb" and bool(hec.events) and "OUTBOX" in json.dumps(params)

    fault = Fault(after_delivery)
    stack.recorder.faults.append(fault)
    put_objects(stack, trail.disk, trail.logs)
    poller = Poller(stack)
    poller.drain()
    assert fault.fired and poller.crashes == 1
    with time_machine.travel(time.time() + LEASE_S + 60, tick=True):
        hourly(stack, trail.disk)
    result = outcome(
        stack,
        capsys,
        "crash-after-delivery-before-marking",
        "container dies between HEC's 200 and marking delivered",
        trail.expected,
        "the lease expires; the hourly run re-sends",
    )
    assert (result.lost, result.pending, result.in_logs, result.dlq_messages) == (0, 0, 0, 0)
    assert result.at_hec_once + result.at_hec_twice == 20 and result.at_hec_twice >= 1


def test_each_object_notified_three_times_at_once(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three containers get the same notifications at the same time (threads; each API call
    is atomic, as the service's are): the claims let one alert through per object."""
    sqs = boto3.client("sqs", region_name=REGION)
    put_objects(stack, trail.disk, trail.logs)
    bodies = [m["Body"] for m in Poller(stack).receive()]
    sqs.purge_queue(QueueUrl=stack.queue_url)
    for _ in range(3):
        for body in bodies:
            sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    pollers = [Poller(stack, stack.load("realtime")) for _ in range(3)]
    for poller in pollers:
        poller.batch_size = 10  # smaller batches, so the three interleave
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(poller: Poller) -> None:
        try:
            barrier.wait(timeout=30)
            poller.drain()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in pollers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sum(len(p.invocations) for p in pollers) >= 3
    result = outcome(
        stack,
        capsys,
        "notified-3x-concurrently",
        "every notification 3 times, 3 containers at once",
        trail.expected,
        "none needed",
    )
    assert everything(result) == (20, 0, 0, 0, 0)
    assert result.at_hec_twice == 0


# --- hostile and oversized input ------------------------------------------------------------


def test_an_alert_over_dynamodbs_item_limit(
    stack: DeployedStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One principal, 577 new actions in one object, a 512-character user agent: one alert
    reaches HEC, it counts all 577, and it fits DynamoDB's 400 KB item."""
    t = at(9, 0)
    # mallory is known from a month before (past the learning period): its novelty alerts.
    history_key = log_key(t - 30 * 86_400, "mallory0")
    history = log_object(
        [user_record("sts.amazonaws.com:GetCallerIdentity", t - 30 * 86_400, "mallory")]
    )
    records = []
    for i in range(577):
        r = user_record(f"ec2.amazonaws.com:Describe{i:04d}Things", t + i, "mallory")
        r["userAgent"] = "A" * 512
        records.append(r)
    key = log_key(t + 600, "big577")
    body = log_object(records)
    for k, b in ((history_key, history), (key, body)):
        (tmp_path / "logs" / k).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "logs" / k).write_bytes(b)
    expected = expected_alerts(stack, tmp_path / "logs")
    assert expected
    s3 = boto3.client("s3", region_name=REGION)
    for k, b in ((history_key, history), (key, body)):
        s3.put_object(Bucket=stack.bucket, Key=k, Body=b)
        Poller(stack).drain()
    events = [e["event"] for e in stack.hec.events]
    result = outcome(
        stack,
        capsys,
        "alert-over-400kb",
        "577 new actions of one principal, a 512-character user agent",
        expected,
        "none needed",
    )
    assert everything(result) == (len(expected), 0, 0, 0, 0)
    main = next(e for e in events if e.get("detector") != "new_action_burst")
    assert main.get("new_actions_total") == 577
    assert len(orjson.dumps(main)) < 400_000


def test_a_gzip_bomb_fails_alone(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object that inflates far past the deployed cap is refused as too_large, alone: the
    other objects of its batch are processed; its message goes to the DLQ after the queue's
    maxReceiveCount. (The memory bound under a real limit: tests/test_bomb*.py.)"""
    bomb_key = log_key(at(9, 0, 30), "bomb01")
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        gz.write(b'{"Records":[')
        chunk = b" " * (1 << 20)
        for _ in range(300):  # 300 MB: past the deployed cap (a quarter of 1,024 MB)
            gz.write(chunk)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.bucket, Key=bomb_key, Body=raw.getvalue()
    )
    put_objects(stack, trail.disk, trail.logs)
    Poller(stack).drain(max_invocations=12)
    result = outcome(
        stack,
        capsys,
        "gzip-bomb",
        "300 MB of spaces in one 300 KB object, among the 21",
        trail.expected,
        "the bomb's message to the DLQ after maxReceiveCount",
    )
    assert (result.at_hec_once, result.pending, result.lost, result.dlq_messages) == (20, 0, 0, 1)


def test_a_deleted_object_is_skipped_not_retried(
    stack: DeployedStack, trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Notified, then deleted (a lifecycle rule, an operator) before it is read: S3 answers
    404 to a role allowed s3:ListBucket, and the object is skipped, not retried into the DLQ.
    Expected: what the objects that remain hold."""
    gone = trail.keys[3]
    put_objects(stack, trail.disk, trail.logs)
    boto3.client("s3", region_name=REGION).delete_object(Bucket=stack.bucket, Key=gone)
    (tmp_path / "logs" / gone).unlink()
    expected = expected_alerts(stack, tmp_path / "logs")
    Poller(stack).drain()
    result = outcome(
        stack,
        capsys,
        "object-deleted",
        "an object deleted between its notification and its read",
        expected,
        "skipped as object_gone",
    )
    assert everything(result) == (19, 0, 0, 0, 0)


# --- the whole story -----------------------------------------------------------------------------


def test_lost_notifications_and_an_outage_then_the_hourly_run(
    stack: DeployedStack, trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third of the notifications never arrive and HEC refuses everything (429, come back in
    an hour) while the others are processed; the hourly run finds the missed objects from the
    digest, processes them, and sends every alert, each once."""
    keys = trail.keys
    missed = set(keys[1::3])
    notified = [k for k in keys if k not in missed]
    faults = stack.hec.faults
    faults.status_first, faults.status, faults.retry_after = 10**6, 429, 3600
    put_objects(stack, trail.disk, notified)
    Poller(stack).drain()
    s3 = boto3.client("s3", region_name=REGION)
    for key in [*sorted(missed), *trail.disk.stored_keys()]:
        if key not in notified:
            s3.put_object(Bucket=stack.bucket, Key=key, Body=(trail.disk.root / key).read_bytes())
    boto3.client("sqs", region_name=REGION).purge_queue(QueueUrl=stack.queue_url)
    faults.status_first = 0
    report = hourly(stack, trail.disk, sorted(missed))
    assert report["files_missed"] == len(missed)
    result = outcome(
        stack,
        capsys,
        "lost-notifications-and-outage",
        f"{len(missed)} of {len(keys)} notifications lost, HEC 429 meanwhile",
        trail.expected,
        "hourly run",
    )
    assert everything(result) == (20, 0, 0, 0, 0)
