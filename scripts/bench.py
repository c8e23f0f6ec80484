"""Throughput and memory of CloudTrail extraction, against `zcat` as the yardstick.

    python scripts/bench.py [--file F.json.gz] [--target-mb 80] [--runs 5]

Without --file, one ~80 MB (uncompressed) delivery object is generated with
scripts/generate_sample.py --single-file. Each method runs --runs times, each run in a fresh
process so peak RSS is that method's alone; the table gives the median wall time, MB/s of
uncompressed input, the ratio to zcat's throughput measured in the same run, and peak RSS.

Methods:
  zcat      `zcat FILE > /dev/null`: decompression alone, the floor
  naive     gzip.open().read() + json.loads + a set of (account, principal, action)
  ours      cloudtrail_anomaly: read_records (streamed, capped inflate + orjson) + Detector.extract
            (normalized events, distinct tuples with first/last time): what detection runs
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

NAIVE = r"""
import gzip, json, sys
doc = json.loads(gzip.open(sys.argv[1]).read())
seen = set()
for r in doc["Records"]:
    ui = r.get("userIdentity") or {}
    seen.add((r.get("recipientAccountId"), ui.get("arn"), r.get("eventSource") + ":" + r.get("eventName")))
print(len(seen))
"""

OURS = r"""
import sys
from cloudtrail_anomaly.baseline import MemoryBaseline
from cloudtrail_anomaly.detector import Detector
from cloudtrail_anomaly.policy import AlertPolicy
from cloudtrail_anomaly.reader import read_records
with open(sys.argv[1], "rb") as fh:
    records = read_records(fh)
ex = Detector(MemoryBaseline(), AlertPolicy()).extract(records)
print(len(ex.observed))
"""


def run(cmd: list[str], shell: bool = False) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, stdout of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd if not shell else " ".join(cmd), shell=shell, stdout=subprocess.PIPE, text=True
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, help="a gzipped CloudTrail delivery object")
    parser.add_argument("--target-mb", type=int, default=80)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--methods", default="zcat,naive,ours")
    args = parser.parse_args()

    tmp = None
    path = args.file
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "bench.json.gz"
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate_sample.py"),
                "--single-file",
                str(path),
                "--target-mb",
                str(args.target_mb),
            ],
            check=True,
        )
    raw = uncompressed_size(path)
    mb = raw / 1e6
    print(
        f"file: {path.name}  {path.stat().st_size / 1e6:.1f} MB gzipped, {mb:.1f} MB uncompressed"
    )
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {os.uname().machine}")
    commands = {
        "zcat": (["zcat", str(path), ">", "/dev/null"], True),
        "naive": ([sys.executable, "-c", NAIVE, str(path)], False),
        "ours": ([sys.executable, "-c", OURS, str(path)], False),
    }
    results: dict[str, tuple[float, int, str]] = {}
    for name in args.methods.split(","):
        cmd, shell = commands[name]
        times, rss, out = [], 0, ""
        for _ in range(args.runs):
            t, r, out = run(cmd, shell)
            times.append(t)
            rss = max(rss, r)
        results[name] = (statistics.median(times), rss, out)
    base = results.get("zcat", (None, 0, ""))[0]
    print(
        f"\n{'method':<8} {'median s':>9} {'MB/s':>8} {'x zcat':>7} {'peak RSS MB':>12} {'x input':>8}  output"
    )
    for name, (t, rss, out) in results.items():
        ratio = f"{base / t:.2f}" if base else "-"
        print(
            f"{name:<8} {t:>9.3f} {mb / t:>8.1f} {ratio:>7} {rss / 1e6:>12.0f} {rss / raw:>8.2f}  {out}"
        )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
