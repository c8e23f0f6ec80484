"""Writing the output: the organization trail (history/, live/ and scenarios.json), grouped into
per account, region and 5-minute delivery objects, or one large delivery object (--single-file).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthetic_trail.clock import HOUR, SLOT, SLOTS_PER_HOUR
from synthetic_trail.draws import ALNUM, rand_chars
from synthetic_trail.render import render
from synthetic_trail.scenarios import build_scenarios
from synthetic_trail.traffic import coverage_events, generate_hour
from synthetic_trail.world import JSON, Event, World, build_world


def _make_dumps() -> Callable[[Any], bytes]:
    try:
        import orjson
    except ImportError:
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
        return lambda obj: encoder.encode(obj).encode()
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


dumps = _make_dumps()


@dataclass(slots=True)
class Stats:
    files: int = 0
    records: int = 0
    raw_bytes: int = 0
    gz_bytes: int = 0


class TrailWriter:
    """Groups events into per account/region/5-minute delivery objects and writes them."""

    def __init__(self, world: World, out: Path) -> None:
        self.world = world
        self.out = out
        self.buckets: dict[tuple[int, int, str], list[Event]] = {}
        self.stats = Stats()
        self._dirs: set[str] = set()

    def add(self, ev: Event, rng: random.Random) -> None:
        # Most records reach the file of their slot; a few are delivered in the next one.
        lag = 0 if rng.random() < 0.88 else rng.randint(1, 150)
        slot = (ev.ts + lag - self.world.t0) // SLOT
        key = (slot, ev.principal.account.idx, ev.region)
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = [ev]
        else:
            bucket.append(ev)

    def flush(self, before_slot: int | None, rng: random.Random) -> None:
        """Write every delivery object of a slot before `before_slot` (None: all of them)."""
        ready = sorted(k for k in self.buckets if before_slot is None or k[0] < before_slot)
        for key in ready:
            self._write(key, self.buckets.pop(key), rng)

    def _write(self, key: tuple[int, int, str], events: list[Event], rng: random.Random) -> None:
        slot, idx, region = key
        w = self.world
        slot_end = w.t0 + (slot + 1) * SLOT
        if slot_end > w.t_end:
            return
        events.sort(key=lambda e: (e.ts, e.seq))
        for i in range(len(events) - 1):  # files are only roughly in time order
            if rng.random() < 0.04:
                events[i], events[i + 1] = events[i + 1], events[i]
        acct = w.accounts[idx].account_id
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(slot_end))
        day = time.strftime("%Y/%m/%d", time.gmtime(slot_end))
        phase = "history" if slot_end <= w.live_start else "live"
        folder = f"{self.out}/{phase}/AWSLogs/{w.org_id}/{acct}/CloudTrail/{region}/{day}"
        if folder not in self._dirs:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)
        uid = rand_chars(rng, ALNUM, 16)
        name = f"{acct}_CloudTrail_{region}_{stamp}_{uid}.json.gz"
        raw = dumps({"Records": [render(w, ev, rng) for ev in events]})
        data = gzip.compress(raw, compresslevel=6, mtime=0)
        with open(f"{folder}/{name}", "wb") as f:
            f.write(data)
        self.stats.files += 1
        self.stats.records += len(events)
        self.stats.raw_bytes += len(raw)
        self.stats.gz_bytes += len(data)


def generate_trail(args: argparse.Namespace) -> tuple[Stats, list[JSON]]:
    world = build_world(args)
    scenarios = build_scenarios(world)
    scheduled: dict[int, list[Event]] = {}
    injected = [e for sc in scenarios for e in sc.events + sc.context]
    for ev in coverage_events(world, args.history_days) + injected:
        scheduled.setdefault((ev.ts - world.t0) // HOUR, []).append(ev)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    writer = TrailWriter(world, out)
    hours = (world.t_end - world.t0) // HOUR
    for h in range(hours):
        rng = random.Random(f"{world.seed}:hour:{h}")
        hour_start = world.t0 + h * HOUR
        for ev in generate_hour(world, hour_start, rng) + scheduled.pop(h, []):
            writer.add(ev, rng)
        writer.flush(h * SLOTS_PER_HOUR, rng)
    writer.flush(None, random.Random(f"{world.seed}:tail"))

    docs = [sc.to_json() for sc in scenarios]
    (out / "scenarios.json").write_text(json.dumps(docs, indent=2) + "\n")
    return writer.stats, docs


def write_single_file(args: argparse.Namespace) -> Stats:
    """Stream one delivery object of about `--target-mb` MB, uncompressed."""
    world = build_world(args)
    target = int(args.target_mb * 1_000_000)
    path = Path(args.single_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = Stats(files=1)
    head, sep, tail = b'{"Records":[', b",", b"]}"
    written = len(head) + len(tail)
    with (
        path.open("wb") as raw_file,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw_file, mtime=0, compresslevel=6) as gz,
    ):
        _write_records(world, gz, target, written, head, sep, stats)
        gz.write(tail)
    stats.gz_bytes = path.stat().st_size
    return stats


def _write_records(
    world: World,
    gz: gzip.GzipFile,
    target: int,
    written: int,
    head: bytes,
    sep: bytes,
    stats: Stats,
) -> None:
    gz.write(head)
    h = 0
    while True:
        rng = random.Random(f"{world.seed}:single:{h}")
        evs = generate_hour(world, world.t0 + h * HOUR, rng)
        evs.sort(key=lambda e: (e.ts, e.seq))
        for ev in evs:
            rec = dumps(render(world, ev, rng))
            extra = len(rec) + (len(sep) if stats.records else 0)
            if written + extra > target and stats.records:
                stats.raw_bytes = written
                return
            if stats.records:
                gz.write(sep)
            gz.write(rec)
            written += extra
            stats.records += 1
        h += 1
