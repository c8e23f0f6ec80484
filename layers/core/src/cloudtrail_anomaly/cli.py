"""The `cloudtrail-anomaly` command: local replay and baselining over CloudTrail files."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson

from . import __version__
from .baseline import Baseline, MemoryBaseline
from .config import Config, ConfigError, load_config
from .detector import Detector, ObjectResult
from .policy import AlertPolicy
from .replay import format_summary, replay
from .sqlite_baseline import SqliteBaseline, StateFileError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudtrail-anomaly",
        description="Detect AWS principals doing something they have never done before.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "paths",
            nargs="+",
            type=Path,
            metavar="PATH",
            help="CloudTrail log files or folders (searched recursively)",
        )
        p.add_argument(
            "--config", type=Path, help="TOML config (default: $CLOUDTRAIL_ANOMALY_CONFIG)"
        )
        p.add_argument(
            "--learning-days",
            type=float,
            metavar="N",
            help="days a new principal is learned before it can alert (default 15)",
        )
        p.add_argument(
            "--max-object-bytes",
            type=int,
            metavar="N",
            help="fail objects that inflate beyond N bytes (default 1 GiB)",
        )

    rp = sub.add_parser(
        "replay", help="detect new behaviour in CloudTrail files; alerts as JSON Lines"
    )
    common(rp)
    rp.add_argument(
        "--state",
        type=Path,
        help="SQLite baseline file, created if absent (default: in memory, not kept)",
    )
    rp.add_argument("--output", type=Path, help="write alerts here instead of stdout")
    rp.add_argument(
        "--include-suppressed",
        action="store_true",
        help="also output suppressed alerts, with suppressed: true and the reason",
    )

    bp = sub.add_parser("baseline", help="learn from history: record every tuple, alert nothing")
    common(bp)
    bp.add_argument("--state", type=Path, required=True, help="SQLite baseline file")
    return parser


def _settings(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if args.learning_days is not None:
        if args.learning_days < 0:
            raise ConfigError("--learning-days must be >= 0")
        config = dataclasses.replace(
            config, policy=dataclasses.replace(config.policy, learning_days=args.learning_days)
        )
    if args.max_object_bytes is not None:
        if args.max_object_bytes <= 0:
            raise ConfigError("--max-object-bytes must be > 0")
        config = dataclasses.replace(
            config,
            reader=dataclasses.replace(config.reader, max_object_bytes=args.max_object_bytes),
        )
    return config


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _settings(args)
        baseline: Baseline = SqliteBaseline(args.state) if args.state else MemoryBaseline()
    except (ConfigError, StateFileError) as exc:
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    detector = Detector(
        baseline, AlertPolicy(config.policy), config.detection, alerting=args.command == "replay"
    )
    out: IO[bytes] = sys.stdout.buffer
    if getattr(args, "output", None):
        out = args.output.open("wb")
    include_suppressed = getattr(args, "include_suppressed", False)

    def emit(result: ObjectResult) -> None:
        alerts = result.alerts + (result.suppressed if include_suppressed else [])
        for alert in alerts:
            out.write(orjson.dumps(alert.to_dict()) + b"\n")
        if alerts:
            out.flush()

    try:
        summary = replay(args.paths, detector, emit, config.reader.max_object_bytes, sys.stderr)
    except FileNotFoundError as exc:
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    format_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
