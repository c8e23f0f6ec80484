"""Where `replay` and `deliver` send alerts (--sink, --output, --format), and what a run that
could not deliver them all says."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ...formats import FORMATS
from ...ports import AlertSink, DeliveryReport, PendingAlert
from ...sinks.formatted import with_format
from ...sinks.jsonl import JsonLinesSink
from ...usecases.deliver import DeliverySummary

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", type=Path, help=OUTPUT_HELP)
    p.add_argument("--sink", choices=SINKS, default="jsonl", help=SINK_HELP)
    p.add_argument("--format", choices=list(FORMATS), default="alert", help=FORMAT_HELP)


class SinkError(ValueError):
    """The sink cannot be built as configured; the message says what to set."""


class TimedSink:
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


@dataclass(slots=True)
class AlertOutput:
    """The stream alerts are written to (stdout, or the --output file), and the sink."""

    stream: IO[bytes]
    sink: TimedSink

    def close(self) -> None:
        if self.stream is not sys.stdout.buffer:
            self.stream.close()


def open_output(args: argparse.Namespace) -> AlertOutput:
    """The sink and stream the arguments name (a subcommand without them: JSON lines on
    stdout); a `SinkError` says what is wrong, with nothing left open."""
    sink_name = getattr(args, "sink", "jsonl")
    output: Path | None = getattr(args, "output", None)
    if sink_name != "jsonl" and output:
        raise SinkError("--output is for --sink jsonl")
    stream: IO[bytes] = sys.stdout.buffer
    if output:
        # Appended to, never truncated: what an earlier run (a killed replay) wrote there is
        # marked delivered in the outbox and would never be written again. The sink fsyncs the
        # file before it reports alerts delivered.
        try:
            stream = output.open("ab")
        except OSError as exc:
            raise SinkError(f"--output {output}: {exc.strerror or exc}") from None
    # Only splunk's sink can fail here, and --output is refused with it: `stream` is stdout.
    sink = _sink(sink_name, stream)
    return AlertOutput(stream, TimedSink(with_format(sink, getattr(args, "format", "alert"))))


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


def _waiting_for_splunk(seconds: float) -> None:
    """Splunk's backoff between retries, said on stderr: an outage is not silence."""
    print(
        f"cloudtrail-anomaly: Splunk HEC not answering; retrying in {seconds:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(seconds)


def undelivered(done: DeliverySummary, state: Path | None, seconds: float = 0.0) -> str:
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
