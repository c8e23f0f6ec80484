"""Performance of CloudTrail extraction, memory, the real-time handler and the CLI at scale.

    python scripts/bench.py [--file F.json.gz] [--target-mb 80] [--runs 5] [--before REV]
    python scripts/bench.py --handler [--file F.json.gz]
    python scripts/bench.py --scale 100000,1000000 [--scale-dir DIR]
    python scripts/bench.py --dynamodb [--files 2000]
    python scripts/bench.py --lookups 1000,20000,200000
    python scripts/bench.py --parallel 1,2,3 [--file F.json.gz] [--sample DIR] [--runs 3]

Throughput (the default): one ~80 MB (uncompressed) delivery object, generated with
scripts/generate_sample.py --single-file unless --file is given. Each method runs --runs times,
each in a fresh process so that its peak RSS is its own; the table gives the median wall time
of the process, MB/s of uncompressed input, the ratio to zcat's throughput measured in the same
run, peak RSS and its ratio to the uncompressed size, then the same for the time measured
inside the process from opening the file to the extraction done (interpreter start and imports
excluded: a Lambda container or a replay pays them once, not per object).

Methods:
  zcat       `zcat FILE > /dev/null`: decompression alone, the yardstick
  naive      gzip.open().read() + json.loads + a set of (account, principal, action)
  reference  read_records (ISA-L inflate, orjson, every field) + tests/reference_extract.py (an
             Event per record): the plain path the fast one is tested against
  ours       consume_compact (ISA-L inflate, msgspec decoding only the fields detection reads, a
             part at a time) into Detector.extract as the parts are decoded: what detection runs
  before     with --before REV: the package as it was at git revision REV (its consume_compact
             into Detector.extract, or before there was one its read_compact, or read_records,
             + Detector.extract), extracted from git into a temporary folder

--handler: the real-time Lambda handler (functions/realtime/handler.py) on moto S3/DynamoDB, via
scripts/bench_dynamodb.py's harness: a typical ~1 MB-gzipped object and the 80 MB one (cold and
warm container), then p50/p95 per object over the demo trail's objects in a warm container.

--scale: `cloudtrail-anomaly replay` on SQLite over generated trails of about N records each
(generate_sample.py --out --scale N/135,000), in a fresh process: records/s and peak RSS.

--dynamodb: runs scripts/bench_dynamodb.py (requests per 1,000 records, cold and warm).

--parallel J,J: `replay --jobs J` of four copies of the 80 MB object (--learning-days 0, in
memory) beside `zcat` of the same four files, and with --sample `baseline --jobs J` of the demo
trail's history on a new SQLite file, and two `baseline --jobs 1` side by side ("demo/1 + 1":
what this box's cores give at the time, the ceiling of a --jobs 2 run's gain); runs interleaved
(J=1, J=2, ..., zcat, then again), the median of --runs, and the peak RSS of the whole process
tree (the workers' included), sampled.

--lookups: the SQLite baseline's lookup (one an object) with N tuples stored: its cost must not
grow with N (each key a primary-key search).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORDS_AT_SCALE_1 = 135_197  # generate_sample.py --out with the defaults and --scale 1
PAIR = "demo/1 + 1"  # two one-job runs side by side (--parallel)

# Each snippet prints {"tuples": n, "seconds": in-process time from open to extraction done}.
NAIVE = r"""
import gzip, json, sys, time
t = time.perf_counter()
doc = json.loads(gzip.open(sys.argv[1]).read())
seen = set()
for r in doc["Records"]:
    ui = r.get("userIdentity") or {}
    seen.add((r.get("recipientAccountId"), ui.get("arn"), r.get("eventSource") + ":" + r.get("eventName")))
print(json.dumps({"tuples": len(seen), "seconds": time.perf_counter() - t}))
"""

OURS = r"""
import json, sys, time
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.trail.reader import consume_compact
detector = Detector(MemoryBaseline(), AlertPolicy())
t = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    ex = consume_compact(fh, detector.extract)
print(json.dumps({"tuples": len(ex.observed), "seconds": time.perf_counter() - t}))
"""
# The reference extraction is the tests' oracle: argv[2], the repository root, holds tests/.
REFERENCE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from cloudtrail_anomaly.trail.reader import read_records
from tests.reference_extract import reference_extract
t = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    records = read_records(fh)
ex = reference_extract(records)
del records
print(json.dumps({"tuples": len(ex.observed), "seconds": time.perf_counter() - t}))
"""
# --before REV runs an older package: its modules are found where that revision kept them
# (the flat layout before issue 15, or today's).
BEFORE = r"""
import importlib, json, sys, time
def first(names, attrs):
    for attr in attrs:
        for name in names:
            try:
                return getattr(importlib.import_module("cloudtrail_anomaly." + name), attr)
            except (ImportError, AttributeError):
                pass
    raise ImportError(attrs)
MemoryBaseline = first(["stores.memory", "baseline"], ["MemoryBaseline"])
Detector = first(["domain.detector", "detector"], ["Detector"])
AlertPolicy = first(["domain.policy", "policy"], ["AlertPolicy"])
read = first(["trail.reader", "reader"], ["consume_compact", "read_compact", "read_records"])
detector = Detector(MemoryBaseline(), AlertPolicy())
t = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    if read.__name__ == "consume_compact":  # extracted as it is decoded
        ex = read(fh, detector.extract)
    else:
        records = read(fh)
        ex = detector.extract(records)
        del records
print(json.dumps({"tuples": len(ex.observed), "seconds": time.perf_counter() - t}))
"""


def run(
    cmd: list[str], shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, stdout of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd if not shell else " ".join(cmd), shell=shell, stdout=subprocess.PIPE, text=True, env=env
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {cmd}")
    return elapsed, usage.ru_maxrss * 1024, out.strip()


def uncompressed_size(path: Path) -> int:
    size = 0
    with gzip.open(path) as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
    return size


def generate_single(path: Path, target_mb: float) -> None:
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate_sample.py"),
            "--single-file",
            str(path),
            "--target-mb",
            str(target_mb),
        ],
        check=True,
    )


def package_at(rev: str, into: Path) -> Path:
    """The cloudtrail_anomaly package as it was at git revision `rev`, unpacked under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "layers/core/src/cloudtrail_anomaly"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "layers" / "core" / "src"


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {os.uname().machine}"


def throughput(args: argparse.Namespace, path: Path, tmp: Path) -> None:
    raw = uncompressed_size(path)
    mb = raw / 1e6
    print(
        f"file: {path.name}  {path.stat().st_size / 1e6:.1f} MB gzipped, {mb:.1f} MB uncompressed"
    )
    print(f"machine: {machine()}")
    commands: dict[str, tuple[list[str], bool, dict[str, str] | None]] = {
        "zcat": (["zcat", str(path), ">", "/dev/null"], True, None),
        "naive": ([sys.executable, "-c", NAIVE, str(path)], False, None),
        "reference": ([sys.executable, "-c", REFERENCE, str(path), str(ROOT)], False, None),
        "ours": ([sys.executable, "-c", OURS, str(path)], False, None),
    }
    methods = args.methods.split(",")
    if args.before:
        src = package_at(args.before, tmp)
        env = {**os.environ, "PYTHONPATH": str(src)}
        commands["before"] = ([sys.executable, "-c", BEFORE, str(path)], False, env)
        methods.insert(methods.index("ours") if "ours" in methods else len(methods), "before")
    results: dict[str, tuple[float, int, str, float | None]] = {}
    # Interleave the methods run by run, so that a noisy neighbour hurts them alike.
    times: dict[str, list[float]] = {m: [] for m in methods}
    inner: dict[str, list[float]] = {m: [] for m in methods}
    rss: dict[str, int] = dict.fromkeys(methods, 0)
    outs: dict[str, str] = {}
    for _ in range(args.runs):
        for name in methods:
            cmd, shell, env = commands[name]
            t, r, out = run(cmd, shell, env)
            times[name].append(t)
            rss[name] = max(rss[name], r)
            if out.startswith("{"):
                doc = json.loads(out)
                inner[name].append(doc["seconds"])
                outs[name] = f"{doc['tuples']} tuples"
    for name in methods:
        med_inner = statistics.median(inner[name]) if inner[name] else None
        results[name] = (statistics.median(times[name]), rss[name], outs.get(name, ""), med_inner)
    base = results["zcat"][0] if "zcat" in results else None
    print(
        f"\n{'method':<10} {'process s':>9} {'MB/s':>7} {'x zcat':>7} {'in-proc s':>9} "
        f"{'MB/s':>7} {'x zcat':>7} {'peak RSS MB':>11} {'x input':>8}  output"
    )
    for name, (t, peak, out, t_in) in results.items():
        ratio = f"{base / t:.2f}" if base else "-"
        if t_in is not None:
            inner_cols = f"{t_in:>9.3f} {mb / t_in:>7.1f} " + (
                f"{base / t_in:>7.2f}" if base else f"{'-':>7}"
            )
        else:
            inner_cols = f"{'-':>9} {'-':>7} {'-':>7}"
        print(
            f"{name:<10} {t:>9.3f} {mb / t:>7.1f} {ratio:>7} {inner_cols} "
            f"{peak / 1e6:>11.0f} {peak / raw:>8.2f}  {out}"
        )
    print(f"(median of {args.runs} runs; zcat's process time is its in-process time)")


def handler(args: argparse.Namespace, big: Path, tmp: Path) -> None:
    """The real-time handler on moto: a ~1 MB-gz object, the big one, p50/p95 over the demo."""
    sys.path.insert(0, str(HERE))
    import bench_dynamodb as bd  # the harness: moto S3/DynamoDB, handler loading, environment

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": bd.REGION,
        "BASELINE_TABLE": "bench-baseline",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # moto's TransactWriteItems is not thread-safe: claim one transaction at a time.
        "DYNAMODB_WRITE_CONCURRENCY": "1",
    }.items():
        os.environ[name] = value
    import boto3
    from moto import mock_aws

    from tests.dynamo_tables import create_table

    prefix = "AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/01/"
    typical = (
        tmp
        / "typical"
        / (prefix + "111111111111_CloudTrail_us-east-1_20261101T0000Z_typ0000000000000.json.gz")
    )
    typical.parent.mkdir(parents=True)
    # ~10.5x compression: 10.5 MB of JSON is a ~1 MB object
    generate_single(typical, 10.5)
    bigkey = prefix + "111111111111_CloudTrail_us-east-1_20261101T0005Z_big0000000000000.json.gz"
    (tmp / "big" / bigkey).parent.mkdir(parents=True)
    (tmp / "big" / bigkey).write_bytes(big.read_bytes())
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=bd.REGION)
        create_table(ddb, "bench-baseline")
        print(f"machine: {machine()}; handler on moto (S3, DynamoDB); times are wall clock")
        for root, key in (
            (tmp / "typical", typical.relative_to(tmp / "typical").as_posix()),
            (tmp / "big", bigkey),
        ):
            size, raw = (root / key).stat().st_size, uncompressed_size(root / key)
            cold, warm, records, requests = bd.time_handler(root, key, ddb)
            ours = _read_and_extract(root / key)
            print(
                f"{size / 1e6:6.2f} MB gz ({raw / 1e6:5.1f} MB), {records:>7,} records: "
                f"cold container {cold:6.2f} s ({requests:,} baseline requests), "
                f"warm {warm:6.2f} s; read + extract alone {ours:.2f} s"
            )
    demo_percentiles(args, tmp)


def _read_and_extract(path: Path) -> float:
    """Seconds of consume_compact into Detector.extract on one object: the handler's own
    share."""
    from cloudtrail_anomaly.domain.detector import Detector
    from cloudtrail_anomaly.domain.policy import AlertPolicy
    from cloudtrail_anomaly.stores.memory import MemoryBaseline
    from cloudtrail_anomaly.trail.reader import consume_compact

    start = time.perf_counter()
    with path.open("rb") as fh:
        consume_compact(fh, Detector(MemoryBaseline(), AlertPolicy()).extract)
    return time.perf_counter() - start


def demo_percentiles(args: argparse.Namespace, tmp: Path) -> None:
    """Per-object handler time over the demo's live objects, after its history is learnt."""
    sys.path.insert(0, str(HERE))
    import bench_dynamodb as bd
    import boto3
    from moto import mock_aws

    from tests.dynamo_tables import create_table

    files_timed = args.files or 300
    demo = args.sample or (bd.generate(tmp / "demo") or bd.stratus_as_trail(tmp / "demo"))
    files = bd.sample_files(demo)
    live = [f for f in files if f.startswith("live/")] or files
    history = [f for f in files if f.startswith("history/")]
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=bd.REGION)
        table = f"bench-baseline-demo-{os.getpid()}"
        create_table(ddb, table)
        os.environ["BASELINE_TABLE"] = table
        s3 = boto3.client("s3", region_name=bd.REGION)
        s3.create_bucket(Bucket="bench-demo")
        module = _load_handler(bd, ddb)
        # Learn the history through the handler's use case reading local files (no S3 round
        # trip), then time the handler on each live object, uploaded to S3 first.
        processor = module.function.processor
        s3_source, processor.source = processor.source, bd.LocalSource(demo)
        for key in history[: files_timed * 10]:
            processor.process(bd.ObjectRef("bench-demo", key))
        processor.source = s3_source
        times = []
        for key in live[:files_timed]:
            s3.put_object(Bucket="bench-demo", Key=key, Body=(demo / key).read_bytes())
            event = {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "bench-demo"}, "object": {"key": key}},
                    }
                ]
            }
            start = time.perf_counter()
            module.handler(event, bd._Context())
            times.append(time.perf_counter() - start)
        times.sort()
        p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
        print(
            f"demo live objects    {len(times):,} objects (after {min(len(history), files_timed * 10):,} "
            f"history objects learnt), warm container: p50 {p50 * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
        )


def _load_handler(bd: Any, ddb: Any) -> Any:
    import importlib.util

    ledger_table = f"bench-ledger-demo-{os.getpid()}"
    bd.create_table(ddb, ledger_table)
    os.environ["LEDGER_TABLE"] = ledger_table
    spec = importlib.util.spec_from_file_location("bench_handler_demo", bd.HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.function.processor.sink = bd.NullSink()
    return module


def lookups(sizes: list[int]) -> None:
    """What one object's lookup costs on the SQLite baseline as the baseline grows: 1,000
    lookups of 5 keys (4 stored, 1 not), the keys drawn at random, in a fresh state file."""
    import random

    from cloudtrail_anomaly.domain.model import TupleClaim, TupleKey
    from cloudtrail_anomaly.stores.sqlite import SqliteBaseline

    def key(i: int) -> TupleKey:
        return TupleKey(f"{i % 50:012d}", f"arn:aws:iam::x:role/r{i // 100}", f"svc:Op{i % 100}")

    print(f"machine: {machine()}\n{'tuples':>10} {'1,000 lookups s':>16} {'ms a lookup':>12}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as name:
            db = SqliteBaseline(Path(name) / "state.sqlite")
            for i in range(0, n, 5000):
                db.claim([TupleClaim(key(j), 1, 1, 2**40) for j in range(i, min(n, i + 5000))])
            rng = random.Random(n)
            batches = [
                [key(rng.randrange(n)) for _ in range(4)] + [key(n + 1)] for _ in range(1000)
            ]
            start = time.perf_counter()
            for keys in batches:
                db.lookup(keys)
            elapsed = time.perf_counter() - start
            db.close()
        print(f"{n:>10,} {elapsed:>16.3f} {elapsed:>12.3f}")


def scale(args: argparse.Namespace, tmp: Path) -> None:
    """`cloudtrail-anomaly replay` on SQLite over trails of about N records."""
    cli = Path(sys.executable).with_name("cloudtrail-anomaly")
    print(f"machine: {machine()}")
    print(
        f"{'records':>10} {'objects':>8} {'gz MB':>7} {'replay s':>9} {'records/s':>10} "
        f"{'peak RSS MB':>11}"
    )
    for n in (int(x) for x in args.scale.split(",")):
        where = (args.scale_dir or tmp) / f"trail-{n}"
        if not where.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "generate_sample.py"),
                    "--out",
                    str(where),
                    "--scale",
                    f"{n / RECORDS_AT_SCALE_1:.4f}",
                ],
                check=True,
                stderr=subprocess.DEVNULL,
            )
        objects = list(where.rglob("*.json.gz"))
        gz_mb = sum(p.stat().st_size for p in objects) / 1e6
        state = tmp / f"state-{n}.sqlite"
        state.unlink(missing_ok=True)
        cmd = [
            str(cli),
            "replay",
            str(where / "history"),
            str(where / "live"),
            "--state",
            str(state),
            "--output",
            os.devnull,
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read() if proc.stderr else ""
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"replay failed: {err}")
        records = next(
            int(line.split()[1].replace(",", ""))
            for line in err.splitlines()
            if line.startswith("records:")
        )
        print(
            f"{records:>10,} {len(objects):>8,} {gz_mb:>7.1f} {elapsed:>9.1f} "
            f"{records / elapsed:>10,.0f} {usage.ru_maxrss / 1024:>11.0f}"
        )
        state.unlink(missing_ok=True)


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants, now."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total


def _timed_tree(cmd: list[str] | str) -> tuple[float, int]:
    """Wall seconds and the sampled peak RSS of the process tree of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: alerts left pending never happens with /dev/null
        raise SystemExit(
            f"benchmark command failed: {cmd}: {proc.stderr.read() if proc.stderr else ''}"
        )
    return elapsed, peak


def parallel(args: argparse.Namespace, big: Path, tmp: Path) -> None:
    """`replay`/`baseline --jobs J` beside zcat, interleaved; medians."""
    cli = str(Path(sys.executable).with_name("cloudtrail-anomaly"))
    jobs = [int(j) for j in args.parallel.split(",")]
    four = tmp / "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01"
    four.mkdir(parents=True)
    for i in range(4):
        name = f"111122223333_CloudTrail_us-east-1_20261201T00{i}0Z_bench{i}.json.gz"
        shutil.copyfile(big, four / name)
    files = sorted(str(f) for f in four.iterdir())
    mb = 4 * uncompressed_size(big) / 1e6
    cases: dict[str, list[str] | str] = {"zcat": "zcat " + " ".join(files) + " > /dev/null"}
    for j in jobs:
        cases[f"four/jobs {j}"] = [
            cli,
            "replay",
            str(tmp / "AWSLogs"),
            "--learning-days",
            "0",
            "--output",
            os.devnull,
            "--jobs",
            str(j),
        ]
    if args.sample:

        def baseline(j: int, state: str) -> str:
            at = tmp / f"demo-{state}.sqlite"
            return (
                f"rm -f {at}* && {cli} baseline {args.sample / 'history'} --state {at} --jobs {j}"
            )

        for j in jobs:
            cases[f"demo/jobs {j}"] = baseline(j, str(j))
        if 1 in jobs:
            # What this box's cores give at the time: two independent one-job runs side by side
            # do twice the work of one; a --jobs 2 run can gain at most what they gain.
            cases[PAIR] = f"({baseline(1, 'a')}) & ({baseline(1, 'b')}) & wait"
    times: dict[str, list[float]] = {k: [] for k in cases}
    peaks: dict[str, int] = dict.fromkeys(cases, 0)
    for _ in range(args.runs):
        for name, cmd in cases.items():
            elapsed, peak = _timed_tree(cmd)
            times[name].append(elapsed)
            peaks[name] = max(peaks[name], peak)
    zcat = statistics.median(times["zcat"])
    one = {k.split("/")[0]: statistics.median(v) for k, v in times.items() if k.endswith("jobs 1")}
    print(f"machine: {machine()}; medians of {args.runs} interleaved runs")
    print(
        f"{'case':<14} {'median s':>9} {'runs s':>24} {'vs zcat':>8} {'vs jobs 1':>9} {'tree RSS MB':>11}"
    )
    result = {}
    for name, runs in times.items():
        med = statistics.median(runs)
        group = name.split("/")[0]
        vs_zcat = f"{zcat / med:.2f}x" if group in ("four", "zcat") else ""
        vs_one = f"{one[group] / med:.2f}x" if group in one else ""
        if name == PAIR:
            vs_one = f"{2 * one[group] / med:.2f}x"  # twice the work in `med` seconds
        spread = ", ".join(f"{r:.2f}" for r in runs)
        print(
            f"{name:<14} {med:>9.2f} {spread:>24} {vs_zcat:>8} {vs_one:>9} {peaks[name] / 1e6:>11.0f}"
        )
        result[name] = {"median_s": med, "runs_s": runs, "tree_peak_rss": peaks[name]}
    print(f"four objects: {mb:.0f} MB uncompressed")
    if PAIR in times:
        print(
            f"{PAIR}: two `baseline --jobs 1` of the demo side by side; its 'vs jobs 1' is the "
            "work of two in the time taken, what the cores gave in this run (the most --jobs 2 "
            "can gain)"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "uncompressed_mb": mb, **result}, indent=1)
        )


def compile_package() -> None:
    """Compile the package's bytecode first, as an install does: where Python may not write it
    (PYTHONDONTWRITEBYTECODE, as on this box) every process timed would otherwise compile the
    modules edited since `make venv`, about 2 ms each, and time that instead of the code."""
    import cloudtrail_anomaly

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(cloudtrail_anomaly.__file__).parent)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, help="a gzipped CloudTrail delivery object")
    parser.add_argument("--target-mb", type=float, default=80)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--methods", default="zcat,naive,reference,ours")
    parser.add_argument("--before", metavar="REV", help="also run the package as of git REV")
    parser.add_argument("--handler", action="store_true", help="time the real-time handler")
    parser.add_argument("--sample", type=Path, help="the demo trail (generate_sample.py --out)")
    parser.add_argument(
        "--files",
        type=int,
        help="live objects timed (--handler, default 300), or objects per phase (--dynamodb)",
    )
    parser.add_argument("--scale", metavar="N,N", help="replay trails of about N records")
    parser.add_argument("--scale-dir", type=Path, help="keep/reuse the --scale trails here")
    parser.add_argument("--dynamodb", action="store_true", help="run scripts/bench_dynamodb.py")
    parser.add_argument("--parallel", metavar="J,J", help="replay/baseline --jobs J vs zcat")
    parser.add_argument("--json", type=Path, help="--parallel: also write the figures here")
    parser.add_argument(
        "--lookups", metavar="N,N", help="SQLite baseline lookups with N tuples stored"
    )
    args, rest = parser.parse_known_args()
    if args.lookups:
        lookups([int(n) for n in args.lookups.split(",")])
        return 0

    if args.dynamodb:
        passed = [*rest]
        if args.sample:
            passed += ["--sample", str(args.sample)]
        if args.files:
            passed += ["--files", str(args.files)]
        return subprocess.run(
            [sys.executable, str(HERE / "bench_dynamodb.py"), *passed], check=False
        ).returncode
    compile_package()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.scale:
            scale(args, tmp)
            return 0
        path = args.file
        if path is None:
            path = tmp / "bench.json.gz"
            generate_single(path, args.target_mb)
        if args.parallel:
            parallel(args, path, tmp)
        elif args.handler:
            handler(args, path, tmp)
        else:
            throughput(args, path, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
