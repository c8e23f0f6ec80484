"""`cloudtrail-anomaly explain --state FILE PRINCIPAL [ACTION]`: what the baseline knows about a
principal (what an analyst asks first about an alert). Read only: it works on a copy, or on a
file the user may not write."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import orjson

from ...domain.extract import REGION_PREFIX
from ...domain.model import iso
from ...domain.policy import AlertPolicy
from ...domain.sensitive import expand_action
from ...stores.sqlite import SqliteBaseline, StateFileError
from ..settings import Config, ConfigError
from . import exits, options


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", help="show what the baseline knows about a principal")
    p.add_argument(
        "principal",
        metavar="PRINCIPAL",
        help="baseline key (ARN) of the principal, or a glob such as '*:role/deploy*'",
    )
    p.add_argument(
        "action",
        nargs="?",
        metavar="ACTION",
        help="only this action (eventSource:eventName; iam:CreateUser is accepted)",
    )
    p.add_argument("--state", type=Path, required=True, help="SQLite baseline file")
    p.add_argument("--config", type=Path, help=options.CONFIG_HELP)
    p.add_argument("--json", action="store_true", help="JSON output")


def run(args: argparse.Namespace) -> int:
    try:
        config = options.config(args)
        state = SqliteBaseline(options.existing_state(args.state), read_only=True)
        return explain(state, config, args.principal, args.action, as_json=args.json)
    except (ConfigError, StateFileError) as exc:
        exits.error(str(exc))
        return exits.USAGE


def explain(
    baseline: SqliteBaseline,
    config: Config,
    pattern: str,
    action: str | None,
    *,
    as_json: bool = False,
) -> int:
    """Print a principal's baseline: what an analyst asks first about an alert."""
    matches = baseline.principals_matching(pattern)
    if not matches:
        exits.error(f"no principal matches {pattern!r} in {baseline.path}")
        return exits.USAGE
    # The learning period is the one the last replay of this file used (--learning-days or its
    # config), not whatever this command's config says.
    noted = baseline.noted(options.LEARNING_DAYS_NOTE)
    learning_days = float(noted) if noted is not None else config.policy.learning_days
    learning_source = (
        "as the last replay of this state used"
        if noted is not None
        else "this config's: the state does not say what its replays used"
    )
    policy = AlertPolicy(
        dataclasses.replace(config.policy, learning_days=learning_days), config.ignore
    )
    wanted = expand_action(action) if action else None
    docs: list[dict[str, Any]] = []
    for pkey, first_seen in matches:
        learn_until = policy.learning_until(first_seen)
        account_first = baseline.account_first_seen(pkey.account_id)
        # The stored window reaches back days (slow novelty); the burst's is its last minutes.
        stored = [e for e in baseline.window_of(pkey) if not e.action.startswith("@")]
        newest = max((e.event_time for e in stored), default=0)
        span = policy.settings.burst_window_minutes * 60
        window = [e for e in stored if e.event_time > newest - span]
        every = baseline.tuples_of(pkey)
        docs.append(
            {
                "account_id": pkey.account_id,
                "principal": pkey.principal,
                "first_seen": iso(first_seen),
                "learning_until": iso(learn_until),
                "learning_days": learning_days,
                "learning_days_known": noted is not None,
                "account_first_seen": iso(account_first) if account_first is not None else None,
                "window": {
                    "count": len(window),
                    "threshold": policy.settings.escalate_at,
                    "minutes": policy.settings.burst_window_minutes,
                    "actions": [e.action for e in window],
                },
                "actions": [
                    {
                        "action": a,
                        "first_seen": iso(st.first_seen),
                        "last_seen": iso(st.last_seen),
                        "forgotten_after": iso(st.expires_at),
                    }
                    for a, st in every
                    if not a.startswith(REGION_PREFIX) and (wanted is None or a == wanted)
                ],
                # Every region the principal was seen in, whatever action was asked about.
                "regions": sorted(
                    a[len(REGION_PREFIX) :] for a, _ in every if a.startswith(REGION_PREFIX)
                ),
            }
        )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(docs, option=orjson.OPT_INDENT_2) + b"\n")
        return exits.OK
    for doc in docs:
        print(f"{doc['principal']}  (account {doc['account_id']})")
        print(
            f"  first seen {doc['first_seen']}; learning until {doc['learning_until']}"
            f" (by event time; learning_days {learning_days:g}, {learning_source});"
            f" account first seen {doc['account_first_seen']}"
        )
        w = doc["window"]
        print(
            f"  burst window: {w['count']} new action(s) in the last {w['minutes']} min "
            f"of activity (threshold {w['threshold']})"
        )
        print(f"  regions: {', '.join(doc['regions']) or '-'}")
        if wanted and not doc["actions"]:
            print(f"  {wanted}: never seen (or forgotten): it would be new")
        for a in doc["actions"]:
            print(
                f"  {a['first_seen']}  {a['last_seen']}  {a['action']}"
                f"  (forgotten after {a['forgotten_after']})"
            )
    return exits.OK
