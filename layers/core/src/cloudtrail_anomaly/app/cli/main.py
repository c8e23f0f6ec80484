"""The `cloudtrail-anomaly` command: every subcommand's parser, and the dispatch to it.

A subcommand is a module of this package (`replay`, `deliver`, `baseline`, `explain`,
`backfill`, `report`), each with `add_parser` and `run`; `exits` is their exit status table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ... import __version__
from . import backfill, baseline, deliver, exits, explain, replay, report

Run = Callable[[argparse.Namespace], int]
AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# In the order `--help` lists them.
COMMANDS: dict[str, tuple[AddParser, Run]] = {
    "replay": (replay.add_parser, replay.run),
    "deliver": (deliver.add_parser, deliver.run),
    "baseline": (baseline.add_parser, baseline.run),
    "explain": (explain.add_parser, explain.run),
    "backfill": (backfill.add_parser, backfill.run),
    "report": (report.add_parser, report.run),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudtrail-anomaly",
        description="Detect AWS principals doing something they have never done before.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except KeyboardInterrupt:
        # A replay says more (replay.detect); anything else has nothing half done to show.
        print("cloudtrail-anomaly: interrupted", file=sys.stderr)
        return exits.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
