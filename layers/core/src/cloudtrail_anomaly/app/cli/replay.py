"""`cloudtrail-anomaly replay PATH...`: detect new behaviour in CloudTrail files, alerts as JSON
lines to stdout, a file or Splunk. `baseline` is the same pass with alerting off (`detect`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from ...domain.detector import ObjectResult
from ...formats import formatter
from ...ports import Baseline, Outbox
from ...stores.memory import MemoryBaseline
from ...stores.sqlite import SqliteBaseline, StateFileError
from ...usecases.deliver import Deliverer, DeliverySummary
from ...usecases.extract_pool import WorkerDied
from ...usecases.replay import ReplaySummary, format_summary, replay
from .. import wiring
from ..settings import Config, ConfigError
from . import exits, options, output


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay", help="detect new behaviour in CloudTrail files; alerts as JSON Lines"
    )
    options.add_trail_arguments(p)
    p.add_argument(
        "--state",
        type=Path,
        help="SQLite baseline file, created if absent (default: in memory, not kept)",
    )
    output.add_arguments(p)
    p.add_argument(
        "--include-suppressed",
        action="store_true",
        help="also output suppressed alerts, with suppressed: true and the reason",
    )


def run(args: argparse.Namespace) -> int:
    return detect(args, alerting=True)


def detect(args: argparse.Namespace, *, alerting: bool) -> int:
    """One pass over `args.paths` in delivery order: `replay` (alerting) or `baseline`."""
    try:
        config = options.config(args)
        baseline, outbox = _state(args.state, config, alerting)
    except (ConfigError, StateFileError) as exc:
        exits.error(str(exc))
        return exits.USAGE
    try:
        enricher = wiring.enricher(config) if alerting else None
    except ImportError:
        exits.error("[enrichment] needs boto3: pip install 'cloudtrail-anomaly[aws]'")
        return exits.USAGE
    detector = wiring.detector(baseline, config, enricher=enricher, alerting=alerting)
    try:
        out = output.open_output(args)
    except output.SinkError as exc:
        exits.error(str(exc))
        return exits.USAGE
    include_suppressed = getattr(args, "include_suppressed", False)
    alert_format = getattr(args, "format", "alert")
    # Alerts reach the output through the outbox, as in Lambda: staged with their claims,
    # written, then marked delivered; whatever a crash leaves pending, `deliver` re-sends.
    deliverer = Deliverer(outbox, out.sink)
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
                out.stream.write(orjson.dumps(formatter(alert_format)(alert.to_dict())) + b"\n")
            out.stream.flush()

    summary = ReplaySummary()
    try:
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
        _interrupted(args, summary, alerting)
        return exits.INTERRUPTED
    except WorkerDied as exc:
        exits.error(str(exc))
        _interrupted(args, summary, alerting, "with fewer --jobs if memory ran out")
        return exits.INCOMPLETE
    finally:
        out.close()
    last.dead_lettered += dead_lettered
    return _report(args, summary, last, out.sink.seconds, alerting)


def _state(path: Path | None, config: Config, alerting: bool) -> tuple[Baseline, Outbox]:
    """The baseline and outbox: the state file (--state), else memory, not kept."""
    if path is None:
        memory = MemoryBaseline()
        return memory, memory.outbox
    state = SqliteBaseline(path)
    if alerting:
        # What `explain` needs to say when this file's principals stop learning.
        state.note(options.LEARNING_DAYS_NOTE, repr(config.policy.learning_days))
    return state, state


def _title(args: argparse.Namespace, alerting: bool, interrupted: bool = False) -> str:
    """The summary's first line: which command over what (the demo prints two summaries)."""
    paths: list[Path] = args.paths
    what = str(paths[0]) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
    done = "interrupted" if interrupted else "done"
    if not alerting:
        return f"baseline {what} ({done}; learned, alerts nothing):"
    return f"replay {what} ({done}):"


def _interrupted(
    args: argparse.Namespace, summary: ReplaySummary, alerting: bool, how: str = ""
) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")  # end the progress line
    if args.state:
        where = (
            f"{args.state} holds every object finished (claims and pending alerts are "
            f"written together); run again to go on{f' ({how})' if how else ''}"
            + (
                f", or `cloudtrail-anomaly deliver --state {args.state}` to send what is pending"
                if alerting
                else ""
            )
        )
    else:
        where = "without --state nothing is kept"
    print(f"cloudtrail-anomaly: interrupted: {where}", file=sys.stderr)
    format_summary(summary, title=_title(args, alerting, interrupted=True))


def _report(
    args: argparse.Namespace,
    summary: ReplaySummary,
    last: DeliverySummary,
    seconds: float,
    alerting: bool,
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
    format_summary(summary, title=_title(args, alerting))
    failed = sum(v for k, v in s.items() if k.startswith("objects_failed."))
    problem = output.undelivered(last, args.state, seconds)
    if problem:
        exits.error(problem)
    if last.dead_lettered:
        exits.error(f"{last.dead_lettered:,} alert(s) refused by the sink (dead-lettered)")
    if failed:
        exits.error(f"{failed:,} object(s) could not be read (listed above)")
    return exits.INCOMPLETE if problem or failed or last.dead_lettered else exits.OK
