"""The `cloudtrail-anomaly` command: local replay and baselining over CloudTrail files."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from ... import __version__
from ...domain.detector import ObjectResult
from ...domain.extract import REGION_PREFIX
from ...domain.model import iso
from ...domain.policy import AlertPolicy
from ...domain.sensitive import expand_action
from ...formats import FORMATS, formatter
from ...ports import AlertSink, Baseline, DeliveryReport, Outbox, PendingAlert
from ...sinks.formatted import with_format
from ...stores.memory import MemoryBaseline
from ...stores.sqlite import SqliteBaseline, StateFileError
from ...usecases.deliver import Deliverer, DeliverySummary, JsonLinesSink
from ...usecases.extract_pool import usable_cpus
from ...usecases.replay import ReplaySummary, format_summary, replay
from .. import wiring
from ..settings import Config, ConfigError, load_config
from . import backfill as cli_backfill
from . import exits
from . import report as cli_report

LEARNING_DAYS_NOTE = "learning_days"  # the learning period the last replay of a state file used
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
        p.add_argument(
            "--jobs",
            type=int,
            metavar="N",
            default=usable_cpus(),
            help="processes reading and extracting files (default: the CPUs usable, "
            f"{usable_cpus()} here); alerts are the same with any N",
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


def _waiting_for_splunk(seconds: float) -> None:
    """Splunk's backoff between retries, said on stderr: an outage is not silence."""
    print(
        f"cloudtrail-anomaly: Splunk HEC not answering; retrying in {seconds:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(seconds)


class _TimedSink:
    """A sink that counts the wall-clock time spent in it (what an outage really cost)."""

    def __init__(self, sink: AlertSink) -> None:
        self.sink = sink
        self.name = sink.name
        self.seconds = 0.0

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        started = time.monotonic()
        try:
            return self.sink.deliver(alerts)
        finally:
            self.seconds += time.monotonic() - started


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
        return splunk_sink_from_env(
            os.environ, boto3_client=boto3.client, sleep=_waiting_for_splunk
        )
    except HecSettingsError as exc:
        raise SinkError(f"--sink splunk: {exc}") from None


def _undelivered(done: DeliverySummary, state: Path | None, seconds: float = 0.0) -> str:
    """Why the alerts of a run did not all reach the sink, and where they are; "" if they did."""
    if not done.config_error and not done.still_pending:
        return ""
    spent = f" after {seconds:.0f}s trying" if seconds >= 1 else ""
    where = (
        f"kept in {state}; `cloudtrail-anomaly deliver --state {state}` re-sends them"
        if state
        else "not kept: run with --state to keep them for `deliver`"
    )
    why = f"sink configuration error: {done.config_error}; " if done.config_error else ""
    return f"{why}{done.still_pending:,} alert(s) not delivered{spent} ({where})"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        # A replay says more (_replay_or_deliver); anything else has nothing half done to show.
        print("cloudtrail-anomaly: interrupted", file=sys.stderr)
        return exits.INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    if args.command == "backfill":
        return cli_backfill.run(args)
    if args.command == "report":
        return cli_report.run(args)
    try:
        config = _settings(args)
        if args.command in ("explain", "deliver") and not _exists(args.state):
            raise StateFileError(f"{args.state}: no such state file")
        if args.command == "explain":
            # Read only: explaining must work on a copy or a file the user may not write.
            return explain(
                SqliteBaseline(args.state, read_only=True),
                config,
                args.principal,
                args.action,
                as_json=args.json,
            )
        baseline: Baseline
        outbox: Outbox
        if args.state:
            state = SqliteBaseline(args.state)
            if args.command == "replay":
                # What `explain` needs to say when this file's principals stop learning.
                state.note(LEARNING_DAYS_NOTE, repr(config.policy.learning_days))
            baseline = outbox = state
        else:
            memory = MemoryBaseline()
            baseline, outbox = memory, memory.outbox
    except (ConfigError, StateFileError) as exc:
        exits.error(str(exc))
        return exits.USAGE
    return _replay_or_deliver(args, config, baseline, outbox)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # a folder the user may not enter
        raise StateFileError(f"{path}: {exc.strerror or exc}") from None


def _title(args: argparse.Namespace, interrupted: bool = False) -> str:
    """The summary's first line: which command over what (the demo prints two summaries)."""
    paths: list[Path] = args.paths
    what = str(paths[0]) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
    done = "interrupted" if interrupted else "done"
    if args.command == "baseline":
        return f"baseline {what} ({done}; learned, alerts nothing):"
    return f"replay {what} ({done}):"


def _replay_or_deliver(
    args: argparse.Namespace, config: Config, baseline: Baseline, outbox: Outbox
) -> int:
    alerting = args.command == "replay"
    try:
        enricher = wiring.enricher(config) if alerting else None
    except ImportError:
        exits.error("[enrichment] needs boto3: pip install 'cloudtrail-anomaly[aws]'")
        return exits.USAGE
    detector = wiring.detector(baseline, config, enricher=enricher, alerting=alerting)
    sink_name = getattr(args, "sink", "jsonl")
    if sink_name != "jsonl" and getattr(args, "output", None):
        exits.error("--output is for --sink jsonl")
        return exits.USAGE
    out: IO[bytes] = sys.stdout.buffer
    if getattr(args, "output", None):
        # Appended to, never truncated: what an earlier run (a killed replay) wrote there is
        # marked delivered in the outbox and would never be written again. The sink fsyncs the
        # file before it reports alerts delivered.
        try:
            out = args.output.open("ab")
        except OSError as exc:
            exits.error(f"--output {args.output}: {exc.strerror or exc}")
            return exits.USAGE
    try:
        sink = _TimedSink(with_format(_sink(sink_name, out), getattr(args, "format", "alert")))
    except SinkError as exc:  # only splunk's, so `out` is stdout: nothing to close
        exits.error(str(exc))
        return exits.USAGE
    include_suppressed = getattr(args, "include_suppressed", False)
    # Alerts reach the output through the outbox, as in Lambda: staged with their claims,
    # written, then marked delivered; whatever a crash leaves pending, `deliver` re-sends.
    deliverer = Deliverer(outbox, sink)
    dead_lettered = 0

    def emit(result: ObjectResult) -> None:
        # After a round that left alerts pending (an outage, a bad token) the deliverer's
        # circuit is open: the replay goes on staging alerts and tries once more at the end,
        # rather than at every object.
        nonlocal dead_lettered
        if result.alerts and not deliverer.circuit_open:
            dead_lettered += deliverer.deliver_pending().dead_lettered
        if include_suppressed and result.suppressed:
            for alert in result.suppressed:
                out.write(
                    orjson.dumps(formatter(getattr(args, "format", "alert"))(alert.to_dict()))
                    + b"\n"
                )
            out.flush()

    summary = ReplaySummary()
    try:
        if args.command == "deliver":
            done = deliverer.deliver_pending()
            print(
                f"delivered {done.delivered:,}, dead-lettered {done.dead_lettered:,}, "
                f"still pending {done.still_pending:,}"
                + (f"; sink configuration error: {done.config_error}" if done.config_error else ""),
                file=sys.stderr,
            )
            # A sink refusing its settings at run time (a bad token) is still a run that left
            # alerts undelivered: 1, like an outage; 2 is for what stops a command at the start.
            if _undelivered(done, args.state) or done.dead_lettered:
                return exits.INCOMPLETE
            return exits.OK
        replay(
            args.paths,
            detector,
            emit,
            config.reader.max_object_bytes,
            sys.stderr,
            summary,
            jobs=max(1, args.jobs),
        )
        # One last round (not after a configuration error: it would only be refused again).
        if deliverer.config_error:
            last = deliverer.deliver_pending()  # the circuit is open: this only counts
            last.still_pending = len(outbox.pending(10**9))
        else:
            deliverer.reset()
            last = deliverer.deliver_pending()
    except FileNotFoundError as exc:
        exits.error(str(exc))
        return exits.USAGE
    except KeyboardInterrupt:
        _interrupted(args, summary)
        return exits.INTERRUPTED
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    last.dead_lettered += dead_lettered
    return _report(args, summary, last, sink.seconds)


def _interrupted(args: argparse.Namespace, summary: ReplaySummary) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")  # end the progress line
    if args.state:
        where = (
            f"{args.state} holds every object finished (claims and pending alerts are "
            "written together); run again to go on"
            + (
                f", or `cloudtrail-anomaly deliver --state {args.state}` to send what is pending"
                if args.command == "replay"
                else ""
            )
        )
    else:
        where = "without --state nothing is kept"
    print(f"cloudtrail-anomaly: interrupted: {where}", file=sys.stderr)
    format_summary(summary, title=_title(args, interrupted=True))


def _report(
    args: argparse.Namespace, summary: ReplaySummary, last: DeliverySummary, seconds: float
) -> int:
    """The summary, then what the exit status stands for, one line each."""
    s = summary.stats
    found = (
        s["objects"]
        + sum(v for k, v in s.items() if k.startswith(("objects_skipped.", "objects_failed.")))
        - s["objects_skipped.not_a_log_file"]
    )
    if not found:
        exits.warning(
            "no log objects found in "
            + ", ".join(str(p) for p in args.paths)
            + " (CloudTrail files end in .json.gz, .json or .gz)"
        )
    format_summary(summary, title=_title(args))
    failed = sum(v for k, v in s.items() if k.startswith("objects_failed."))
    problem = _undelivered(last, args.state, seconds)
    if problem:
        exits.error(problem)
    if last.dead_lettered:
        exits.error(f"{last.dead_lettered:,} alert(s) refused by the sink (dead-lettered)")
    if failed:
        exits.error(f"{failed:,} object(s) could not be read (listed above)")
    return exits.INCOMPLETE if problem or failed or last.dead_lettered else exits.OK


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
    noted = baseline.noted(LEARNING_DAYS_NOTE)
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


if __name__ == "__main__":
    sys.exit(main())
