"""What several subcommands share on their command line: the files `replay` and `baseline`
read, the config with the command line's overrides, and the state file a command only reads."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ...stores.sqlite import StateFileError
from ...usecases.extract_pool import usable_cpus
from ..settings import Config, ConfigError, load_config

CONFIG_HELP = "TOML config (default: $CLOUDTRAIL_ANOMALY_CONFIG)"
# A state file's note of the learning period the last replay of it used: what `explain` needs to
# say when the file's principals stop learning.
LEARNING_DAYS_NOTE = "learning_days"


def add_trail_arguments(p: argparse.ArgumentParser) -> None:
    """The CloudTrail files `replay` and `baseline` read, and how."""
    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="CloudTrail log files or folders (searched recursively)",
    )
    p.add_argument("--config", type=Path, help=CONFIG_HELP)
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
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        default=usable_cpus(),
        help="processes reading and extracting files, this one included (default: the CPUs "
        f"usable, {usable_cpus()} here); alerts are the same with any N",
    )


def config(args: argparse.Namespace) -> Config:
    """The config file (--config, else $CLOUDTRAIL_ANOMALY_CONFIG) with the overrides the
    subcommand offers (--learning-days, --max-object-bytes); a `ConfigError` names what is bad."""
    config = load_config(args.config)
    if getattr(args, "learning_days", None) is not None:
        if args.learning_days < 0:
            raise ConfigError("--learning-days must be >= 0")
        config = dataclasses.replace(
            config, policy=dataclasses.replace(config.policy, learning_days=args.learning_days)
        )
    if getattr(args, "max_object_bytes", None) is not None:
        if args.max_object_bytes <= 0:
            raise ConfigError("--max-object-bytes must be > 0")
        config = dataclasses.replace(
            config,
            reader=dataclasses.replace(config.reader, max_object_bytes=args.max_object_bytes),
        )
    return config


def existing_state(path: Path) -> Path:
    """`path`, for a subcommand that reads a state file and must not create one: a
    `StateFileError` when it is not there."""
    try:
        found = path.exists()
    except OSError as exc:  # a folder the user may not enter
        raise StateFileError(f"{path}: {exc.strerror or exc}") from None
    if not found:
        raise StateFileError(f"{path}: no such state file")
    return path
