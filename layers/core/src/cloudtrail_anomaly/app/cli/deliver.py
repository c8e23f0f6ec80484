"""`cloudtrail-anomaly deliver --state FILE`: re-send the alerts still pending in a state file's
outbox (what an outage, a bad token or an interrupted replay left)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...stores.sqlite import SqliteBaseline, StateFileError
from ...usecases.deliver import Deliverer
from ..settings import ConfigError
from . import exits, options, output


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("deliver", help="re-send the alerts still pending in a state file's outbox")
    p.add_argument("--state", type=Path, required=True, help="SQLite baseline file")
    output.add_arguments(p)
    p.add_argument("--config", type=Path, help=options.CONFIG_HELP)


def run(args: argparse.Namespace) -> int:
    try:
        options.config(args)  # a bad config stops this command too
        state = SqliteBaseline(options.existing_state(args.state))
    except (ConfigError, StateFileError) as exc:
        exits.error(str(exc))
        return exits.USAGE
    try:
        out = output.open_output(args)
    except output.SinkError as exc:
        exits.error(str(exc))
        return exits.USAGE
    try:
        done = Deliverer(state, out.sink).deliver_pending()
    finally:
        out.close()
    print(
        f"delivered {done.delivered:,}, dead-lettered {done.dead_lettered:,}, "
        f"still pending {done.still_pending:,}"
        + (f"; sink configuration error: {done.config_error}" if done.config_error else ""),
        file=sys.stderr,
    )
    # A sink refusing its settings at run time (a bad token) is still a run that left alerts
    # undelivered: 1, like an outage; 2 is for what stops a command at the start.
    if output.undelivered(done, args.state) or done.dead_lettered:
        return exits.INCOMPLETE
    return exits.OK
