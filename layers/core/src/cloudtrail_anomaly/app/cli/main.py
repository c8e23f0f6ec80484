"""The `cloudtrail-anomaly` command: local replay and baselining over CloudTrail files."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from ... import __version__
from ...domain.detector import REGION_PREFIX, ObjectResult
from ...domain.model import iso
from ...domain.policy import AlertPolicy
from ...domain.sensitive import expand_action
from ...formats import FORMATS, formatter
from ...ports import AlertSink, Baseline, Outbox
from ...sinks.formatted import with_format
from ...stores.memory import MemoryBaseline
from ...stores.sqlite import SqliteBaseline, StateFileError
from ...usecases.deliver import Deliverer, DeliverySummary, JsonLinesSink
from ...usecases.replay import format_summary, replay
from .. import wiring
from ..settings import Config, ConfigError, load_config
from . import backfill as cli_backfill
from . import report as cli_report

EXIT_USAGE = 2
EXIT_UNDELIVERED = 1  # a sink configuration error, or alerts left pending
SINKS = ("jsonl", "splunk")
FORMAT_HELP = (
    "what each alert is written as: alert (its own JSON, README 'Alert format'; the default) "
    "or ocsf (an OCSF 1.5.0 Detection Finding, docs/ocsf.md)"
)
OUTPUT_HELP = (
    "append alerts to this file instead of writing them to stdout: created if absent, never "
    "truncated (alerts an earlier run wrote stay), fsynced before they count as delivered"
)
SINK_HELP = (
    "where alerts go: jsonl (stdout or --output; the default) or splunk (HEC: SPLUNK_HEC_URL "
    "and SPLUNK_HEC_TOKEN, or SPLUNK_HEC_TOKEN_SECRET / SPLUNK_HEC_TOKEN_PARAMETER to read it "
    "from Secrets Manager / SSM; SPLUNK_HEC_INDEX, SPLUNK_HEC_GZIP... as in README)"
)


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
    rp.add_argument("--output", type=Path, help=OUTPUT_HELP)
    rp.add_argument("--sink", choices=SINKS, default="jsonl", help=SINK_HELP)
    rp.add_argument("--format", choices=list(FORMATS), default="alert", help=FORMAT_HELP)
    rp.add_argument(
        "--include-suppressed",
        action="store_true",
        help="also output suppressed alerts, with suppressed: true and the reason",
    )

    dp = sub.add_parser("deliver", help="re-send the alerts still pending in a state file's outbox")
    dp.add_argument("--state", type=Path, required=True, help="SQLite baseline file")
    dp.add_argument("--output", type=Path, help=OUTPUT_HELP)
    dp.add_argument("--sink", choices=SINKS, default="jsonl", help=SINK_HELP)
    dp.add_argument("--format", choices=list(FORMATS), default="alert", help=FORMAT_HELP)
    dp.add_argument("--config", type=Path, help="TOML config (default: $CLOUDTRAIL_ANOMALY_CONFIG)")

    bp = sub.add_parser("baseline", help="learn from history: record every tuple, alert nothing")
    common(bp)
    bp.add_argument("--state", type=Path, required=True, help="SQLite baseline file")

    ep = sub.add_parser("explain", help="show what the baseline knows about a principal")
    ep.add_argument(
        "principal",
        metavar="PRINCIPAL",
        help="baseline key (ARN) of the principal, or a glob such as '*:role/deploy*'",
    )
    ep.add_argument(
        "action",
        nargs="?",
        metavar="ACTION",
        help="only this action (eventSource:eventName; iam:CreateUser is accepted)",
    )
    ep.add_argument("--state", type=Path, required=True, help="SQLite baseline file")
    ep.add_argument("--config", type=Path, help="TOML config (default: $CLOUDTRAIL_ANOMALY_CONFIG)")
    ep.add_argument("--json", action="store_true", help="JSON output")
    cli_backfill.add_parser(sub)
    cli_report.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Config:
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


class SinkError(ValueError):
    """The sink cannot be built as configured; the message says what to set."""


def _sink(name: str, out: IO[bytes]) -> AlertSink:
    """The sink `--sink` names. Splunk's settings come from the environment (the token itself,
    or the secret or parameter holding it, read with the default AWS credentials)."""
    if name == "jsonl":
        return JsonLinesSink(out)
    try:
        import boto3

        from ...aws.secrets import splunk_sink_from_env
        from ...sinks.splunk_hec import HecSettingsError
    except ImportError:
        raise SinkError(
            "--sink splunk needs the aws extra: pip install 'cloudtrail-anomaly[aws]'"
        ) from None
    try:
        return splunk_sink_from_env(os.environ, boto3_client=boto3.client)
    except HecSettingsError as exc:
        raise SinkError(f"--sink splunk: {exc}") from None


def _undelivered(done: DeliverySummary, state: Path | None) -> str:
    """Why the alerts of a run did not all reach the sink, and where they are; "" if they did."""
    if not done.config_error and not done.still_pending:
        return ""
    where = (
        f"kept in {state}; `cloudtrail-anomaly deliver --state {state}` re-sends them"
        if state
        else "not kept: run with --state to keep them for `deliver`"
    )
    why = f"sink configuration error: {done.config_error}; " if done.config_error else ""
    return f"{why}{done.still_pending:,} alert(s) not delivered ({where})"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backfill":
        return cli_backfill.run(args)
    if args.command == "report":
        return cli_report.run(args)
    try:
        config = _settings(args)
        if args.command in ("explain", "deliver") and not args.state.exists():
            raise StateFileError(f"{args.state}: no such state file")
        baseline: Baseline
        outbox: Outbox
        if args.state:
            baseline = outbox = SqliteBaseline(args.state)
        else:
            memory = MemoryBaseline()
            baseline, outbox = memory, memory.outbox
    except (ConfigError, StateFileError) as exc:
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    policy = AlertPolicy(config.policy, config.ignore)
    if args.command == "explain":
        assert isinstance(baseline, SqliteBaseline)
        return explain(baseline, policy, args.principal, args.action, as_json=args.json)
    alerting = args.command == "replay"
    try:
        enricher = wiring.enricher(config) if alerting else None
    except ImportError:
        print(
            "cloudtrail-anomaly: error: [enrichment] needs boto3: "
            "pip install 'cloudtrail-anomaly[aws]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    detector = wiring.detector(baseline, config, enricher=enricher, alerting=alerting)
    sink_name = getattr(args, "sink", "jsonl")
    if sink_name != "jsonl" and getattr(args, "output", None):
        print("cloudtrail-anomaly: error: --output is for --sink jsonl", file=sys.stderr)
        return EXIT_USAGE
    out: IO[bytes] = sys.stdout.buffer
    if getattr(args, "output", None):
        # Appended to, never truncated: what an earlier run (a killed replay) wrote there is
        # marked delivered in the outbox and would never be written again. The sink fsyncs the
        # file before it reports alerts delivered.
        try:
            out = args.output.open("ab")
        except OSError as exc:
            print(
                f"cloudtrail-anomaly: error: --output {args.output}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
    try:
        sink = with_format(_sink(sink_name, out), getattr(args, "format", "alert"))
    except SinkError as exc:  # only splunk's, so `out` is stdout: nothing to close
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_UNDELIVERED
    include_suppressed = getattr(args, "include_suppressed", False)
    # Alerts reach the output through the outbox, as in Lambda: staged with their claims,
    # written, then marked delivered; whatever a crash leaves pending, `deliver` re-sends.
    deliverer = Deliverer(outbox, sink)

    def emit(result: ObjectResult) -> None:
        # After a round that left alerts pending (an outage, a bad token) the deliverer's
        # circuit is open: the replay goes on staging alerts and tries once more at the end,
        # rather than at every object.
        if result.alerts and not deliverer.circuit_open:
            deliverer.deliver_pending()
        if include_suppressed and result.suppressed:
            for alert in result.suppressed:
                out.write(
                    orjson.dumps(formatter(getattr(args, "format", "alert"))(alert.to_dict()))
                    + b"\n"
                )
            out.flush()

    try:
        if args.command == "deliver":
            done = deliverer.deliver_pending()
            print(
                f"delivered {done.delivered:,}, dead-lettered {done.dead_lettered:,}, "
                f"still pending {done.still_pending:,}"
                + (f"; sink configuration error: {done.config_error}" if done.config_error else ""),
                file=sys.stderr,
            )
            return EXIT_UNDELIVERED if done.config_error or done.still_pending else 0
        summary = replay(args.paths, detector, emit, config.reader.max_object_bytes, sys.stderr)
        # One last round (not after a configuration error: it would only be refused again).
        if deliverer.config_error:
            last = deliverer.deliver_pending()  # the circuit is open: this only counts
            last.still_pending = len(outbox.pending(10**9))
        else:
            deliverer.reset()
            last = deliverer.deliver_pending()
    except FileNotFoundError as exc:
        print(f"cloudtrail-anomaly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    format_summary(summary)
    problem = _undelivered(last, args.state)
    if problem:
        print(f"cloudtrail-anomaly: error: {problem}", file=sys.stderr)
        return EXIT_UNDELIVERED
    return 0


def explain(
    baseline: SqliteBaseline,
    policy: AlertPolicy,
    pattern: str,
    action: str | None,
    *,
    as_json: bool = False,
) -> int:
    """Print a principal's baseline: what an analyst asks first about an alert."""
    matches = baseline.principals_matching(pattern)
    if not matches:
        print(
            f"cloudtrail-anomaly: no principal matches {pattern!r} in {baseline.path}",
            file=sys.stderr,
        )
        return 1
    wanted = expand_action(action) if action else None
    docs: list[dict[str, Any]] = []
    for pkey, first_seen in matches:
        learn_until = policy.learning_until(first_seen)
        account_first = baseline.account_first_seen(pkey.account_id)
        window = baseline.window_of(pkey)
        tuples = [(a, st) for a, st in baseline.tuples_of(pkey) if wanted is None or a == wanted]
        docs.append(
            {
                "account_id": pkey.account_id,
                "principal": pkey.principal,
                "first_seen": iso(first_seen),
                "learning_until": iso(learn_until),
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
                    for a, st in tuples
                    if not a.startswith(REGION_PREFIX)
                ],
                "regions": sorted(
                    a[len(REGION_PREFIX) :] for a, _ in tuples if a.startswith(REGION_PREFIX)
                ),
            }
        )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(docs, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for doc in docs:
        print(f"{doc['principal']}  (account {doc['account_id']})")
        print(
            f"  first seen {doc['first_seen']}; learning until {doc['learning_until']}"
            f" (by event time); account first seen {doc['account_first_seen']}"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
