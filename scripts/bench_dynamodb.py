"""DynamoDB cost of the real-time path: requests per 1,000 records, cold and warm, on moto.

    python scripts/bench_dynamodb.py [--sample DIR] [--files 2000] [--warm-files N]
                                     [--batch-size 100] [--refresh-days D] [--big-mb 0]
                                     [--records-per-object N]

Replays generated CloudTrail objects, in delivery order, through the real-time use case on the
DynamoDB baseline and ledger (moto, in process). Without --sample, the demo's trail is generated
with scripts/generate_sample.py into a temporary folder (if that script is missing, the Stratus
Red Team fixtures are used). The objects come --batch-size to an invocation, as the SQS event
source mapping sends them (the ledger is asked once a batch). Three phases:

  cold       the first --files objects: an empty table and a new container (first deployment)
  warm       the same container on the next --warm-files objects (default: all but the last
             --files, about a month of the demo, so that `last_seen` refreshes, due once every
             refresh_after_days per tuple, are in it as in the long run)
  new-cont.  a new container (empty cache) on the populated table, on the last --files objects

With --records-per-object N the trail's records are first repacked, in delivery order, into
objects of N records each (per account and region, named after the object that completes
them), to see how the requests per 1,000 records fall as objects grow (docs/cost.md).

Then the handler itself (functions/realtime/handler.py, S3 and SQS on moto too) is timed on the
demo's largest object, in a cold and a warm container; with --big-mb N also on one generated
object of about N MB. moto answers in about a millisecond where DynamoDB takes a few, so the
times are a floor for the CPU part; the request counts are what DynamoDB would see.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
from cloudtrail_anomaly.domain.detector import DetectionSettings, Detector
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.ports import DeliveryReport, ObjectRef, OpenedObject, PendingAlert
from cloudtrail_anomaly.stores.dynamodb.baseline import DynamoDbBaseline
from cloudtrail_anomaly.stores.dynamodb.ledger import DynamoDbLedger
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox
from cloudtrail_anomaly.trail.keys import delivery_sort_key
from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
# create_table is the tests' (tests/dynamo_tables.py): the repository's root on the path, as
# pytest puts it, to import it.
sys.path.insert(0, str(ROOT))
from tests.dynamo_tables import create_table  # noqa: E402

HANDLER = ROOT / "functions" / "realtime" / "handler.py"
GENERATOR = ROOT / "scripts" / "generate_sample.py"
STRATUS = ROOT / "tests" / "fixtures" / "cloudtrail" / "stratus-red-team"
REGION = "us-east-1"
_tables = itertools.count()


class LocalSource:
    """Objects from a local folder, keyed by their path under it (the bucket is ignored)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, bucket: str, key: str) -> OpenedObject:
        path = self.root / key
        return OpenedObject(hashlib.md5(path.read_bytes()).hexdigest(), path.open("rb"))


class NullSink:
    """An AlertSink that delivers every alert nowhere, counting them."""

    name = "null"

    def __init__(self) -> None:
        self.alerts = 0

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        self.alerts += len(alerts)
        return DeliveryReport(delivered=[a.alert_id for a in alerts])


@dataclass
class Phase:
    name: str
    objects: int = 0
    records: int = 0
    alerts: int = 0
    refreshed: int = 0  # last_seen refreshes (held to the end of the batch, 100 a request)
    baseline: Counter[str] | None = None
    ledger: int = 0
    outbox: int = 0  # staging and delivering alerts: every other call the client made
    seconds: float = 0.0

    def row(self) -> str:
        assert self.baseline is not None
        per_k = 1000 / max(self.records, 1)
        base = sum(self.baseline.values())
        ops = ", ".join(f"{k} {v:,}" for k, v in sorted(self.baseline.items()))
        total = base + self.ledger + self.outbox
        return (
            f"{self.name:<10} {self.objects:>7,} {self.records:>8,} {base * per_k:>10.1f} "
            f"{self.ledger * per_k:>9.1f} {self.outbox * per_k:>8.1f} {total * per_k:>8.1f} "
            f"{self.seconds:>7.1f}s  {self.alerts:>5}  ({ops}; {self.refreshed:,} refreshes)"
        )


def sample_files(sample: Path) -> list[str]:
    files = [p.relative_to(sample).as_posix() for p in sample.rglob("*.json.gz")]
    return sorted(files, key=delivery_sort_key)


def repack(sample: Path, out: Path, per_object: int) -> Path:
    """The trail's records in objects of `per_object` records, in delivery order."""
    held: dict[tuple[str, str], list[Any]] = {}
    for n, rel in enumerate(sample_files(sample)):
        parts = rel.split("/")
        account, region = parts[parts.index("AWSLogs") + 1], parts[parts.index("CloudTrail") + 2]
        group = held.setdefault((account, region), [])
        group += orjson.loads(gzip.decompress((sample / rel).read_bytes()))["Records"]
        while len(group) >= per_object:
            chunk, group[:] = group[:per_object], group[per_object:]
            # the key grammar's 16-character id, unique per chunk
            stem = Path(rel).name.rsplit("_", 1)[0]
            name = f"{stem}_{n:010d}{len(group):06d}.json.gz"
            target = out / Path(rel).parent / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(gzip.compress(orjson.dumps({"Records": chunk}), 6))
    return out


def generate(out: Path) -> Path | None:
    if not GENERATOR.exists():
        return None
    print(f"generating the demo trail with {GENERATOR.name} ...", file=sys.stderr)
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], check=True)
    return out


def stratus_as_trail(out: Path) -> Path:
    """The Stratus fixtures under CloudTrail keys, when the generator is not there."""
    for i, path in enumerate(sorted(STRATUS.glob("*.json.gz"))):
        key = (
            f"AWSLogs/111111111111/CloudTrail/{REGION}/2024/08/01/"
            f"111111111111_CloudTrail_{REGION}_20240801T{i // 60:02d}{i % 60:02d}Z_s{i:03d}.json.gz"
        )
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).write_bytes(path.read_bytes())
    return out


def run_phase(
    name: str,
    root: Path,
    keys: list[str],
    baseline: DynamoDbBaseline,
    ledger: DynamoDbLedger,
    calls: Counter[str],
    batch_size: int,
    settings: DetectionSettings,
) -> Phase:
    """`calls` counts every request the DynamoDB client makes (a botocore event hook)."""
    sink = NullSink()
    processor = RealtimeProcessor(
        Detector(baseline, AlertPolicy(), settings),
        LocalSource(root),
        ledger,
        sink,
        outbox=DynamoDbOutbox(baseline.client, baseline.table),
        meters=(baseline, ledger),
        claim_failures=baseline,
    )
    before, ledger_before = Counter(baseline.request_counts), ledger.requests
    calls_before = calls.total()
    phase = Phase(name)
    start = time.perf_counter()
    # As the SQS event source mapping sends them: `batch_size` notifications an invocation, each
    # with the object's ETag (S3's notification gives it; here the file's MD5, as S3's would be).
    for i in range(0, len(keys), batch_size):
        refs = [
            ObjectRef("bench", k, hashlib.md5((root / k).read_bytes()).hexdigest())
            for k in keys[i : i + batch_size]
        ]
        processor.begin_batch(refs)
        for ref in refs:
            outcome = processor.process(ref)
            if outcome.status == "processed":
                phase.objects += 1
                phase.records += outcome.stats["records"]
                phase.refreshed += outcome.stats["tuples_refreshed"]
        processor.end_batch()
    phase.seconds = time.perf_counter() - start
    phase.baseline = Counter(baseline.request_counts)
    phase.baseline.subtract(before)
    phase.baseline = +phase.baseline
    phase.ledger = ledger.requests - ledger_before
    phase.outbox = calls.total() - calls_before - sum(phase.baseline.values()) - phase.ledger
    phase.alerts = sink.alerts
    return phase


def time_handler(root: Path, key: str, ddb: Any) -> tuple[float, float, int, int]:
    """The handler on one object through S3 → SQS on moto: (cold s, warm s, records, requests)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="bench-trail")
    body = (root / key).read_bytes()
    s3.put_object(Bucket="bench-trail", Key=key, Body=body)
    records = len(orjson.loads(gzip.decompress(body))["Records"])
    times, requests = [], 0
    for run in range(2):
        # The ledger would answer "already processed": give each run a table of its own.
        ledger_table = f"bench-ledger-{next(_tables)}"
        create_table(ddb, ledger_table)
        os.environ["LEDGER_TABLE"] = ledger_table
        if run == 0:
            spec = importlib.util.spec_from_file_location("bench_handler", HANDLER)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.function.processor.sink = NullSink()
        module.function.processor.ledger = DynamoDbLedger(ddb, ledger_table)
        event = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "bench-trail"}, "object": {"key": key}},
                }
            ]
        }
        before = module.function.baseline.requests
        start = time.perf_counter()
        module.handler(event, _Context())
        times.append(time.perf_counter() - start)
        requests = module.function.baseline.requests - before if run == 0 else requests
    return times[0], times[1], records, requests


class _Context:
    aws_request_id = "bench"
    function_name = "cloudtrail-anomaly-realtime"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sample", type=Path, help="a trail from generate_sample.py --out")
    ap.add_argument(
        "--files", type=int, default=2000, help="objects of the cold phase and the last"
    )
    ap.add_argument("--warm-files", type=int, help="objects of the warm phase (default: the rest)")
    ap.add_argument("--big-mb", type=int, default=0, help="also time one object of ~N MB")
    ap.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="notifications per invocation (infra/serverless.yml's batchSize)",
    )
    ap.add_argument(
        "--refresh-days",
        type=float,
        default=DetectionSettings().refresh_after_days,
        help="[detection] refresh_after_days (default 0: forget_days / 12)",
    )
    ap.add_argument("--records-per-object", type=int, help="repack the trail's records first")
    args = ap.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "BASELINE_TABLE": "bench-baseline",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # moto's TransactWriteItems is not thread-safe: claim one transaction at a time (the
        # request count is the same).
        "DYNAMODB_WRITE_CONCURRENCY": "1",
    }.items():
        os.environ[name] = value

    with tempfile.TemporaryDirectory() as tmp:
        root = args.sample or generate(Path(tmp) / "sample") or stratus_as_trail(Path(tmp))
        if args.records_per_object:
            root = repack(root, Path(tmp) / "repacked", args.records_per_object)
        files = sample_files(root)
        n = args.files
        warm_end = len(files) - n if args.warm_files is None else n + args.warm_files
        chunks = [files[:n], files[n:warm_end], files[warm_end : warm_end + n]]
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name=REGION)
            calls: Counter[str] = Counter()
            ddb.meta.events.register(
                "before-call.dynamodb", lambda model, **_: calls.update([model.name])
            )
            create_table(ddb, "bench-baseline")
            create_table(ddb, "bench-ledger")
            ledger = DynamoDbLedger(ddb, "bench-ledger")
            container = DynamoDbBaseline(ddb, "bench-baseline", write_concurrency=1)
            settings = DetectionSettings(refresh_after_days=args.refresh_days)
            phases = [
                run_phase(
                    "cold", root, chunks[0], container, ledger, calls, args.batch_size, settings
                ),
                run_phase(
                    "warm", root, chunks[1], container, ledger, calls, args.batch_size, settings
                ),
                run_phase(
                    "new-cont.",
                    root,
                    chunks[2],
                    DynamoDbBaseline(ddb, "bench-baseline", write_concurrency=1),
                    ledger,
                    calls,
                    args.batch_size,
                    settings,
                ),
            ]
            print(
                f"\nDynamoDB requests per 1,000 records ({len(files):,} objects in {root.name}/, "
                f"{args.batch_size} an invocation, refresh_after_days "
                f"{args.refresh_days:g})\n"
                f"{'phase':<10} {'objects':>7} {'records':>8} {'baseline':>10} {'ledger':>9} "
                f"{'outbox':>8} {'total':>8} {'time':>8}  alerts"
            )
            for phase in phases:
                print(phase.row())

            largest = max(files, key=lambda f: (root / f).stat().st_size)
            cold, warm, records, requests = time_handler(root, largest, ddb)
            print(
                f"\nhandler on the largest object ({(root / largest).stat().st_size:,} bytes, "
                f"{records:,} records): cold container {cold * 1000:.0f} ms "
                f"({requests} baseline requests), warm container {warm * 1000:.0f} ms"
            )
            if args.big_mb and GENERATOR.exists():
                big = (
                    Path(tmp)
                    / "big"
                    / (
                        "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/01/"
                        "111111111111_CloudTrail_us-east-1_20261101T0000Z_big0000000000000.json.gz"
                    )
                )
                big.parent.mkdir(parents=True)
                subprocess.run(
                    [
                        sys.executable,
                        str(GENERATOR),
                        "--single-file",
                        str(big),
                        "--target-mb",
                        str(args.big_mb),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                key = big.relative_to(Path(tmp) / "big").as_posix()
                cold, warm, records, requests = time_handler(Path(tmp) / "big", key, ddb)
                print(
                    f"handler on a ~{args.big_mb} MB object ({big.stat().st_size:,} bytes gzipped, "
                    f"{records:,} records): cold container {cold:.2f} s ({requests:,} baseline "
                    f"requests), warm container {warm:.2f} s"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
