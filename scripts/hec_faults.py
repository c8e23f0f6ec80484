"""Splunk HEC delivery under faults: what was sent, retried, delivered, dead-lettered, duplicated.

    .venv/bin/python scripts/hec_faults.py [--alerts 40] [--markdown]

Run it with the venv's Python (`make venv`): it imports cloudtrail_anomaly and the tests' HEC
server, which a system `python` does not have.

Each scenario starts the local HEC server of the tests (tests/hec_server.py: real HTTP on
127.0.0.1) with one scripted fault, stages alerts in an outbox and delivers them with the real
`SplunkHecSink` through the `Deliverer`, as the CLI and Lambda do; when the fault is one a person
fixes (a bad token or index) or outlasts the retry budget, it is fixed and delivery runs again.
Backoff is shortened (real sleeps of at most 0.2 s; the timeout scenarios wait 0.4 s for the
read timeout) so the whole table takes a few seconds.

Columns: requests the sink sent, of which retries; alerts delivered, dead-lettered and still
pending at the end; duplicates = copies the server indexed beyond the first, by alert_id. Every
scenario must end with each alert delivered exactly once or dead-lettered, and no duplicates;
the last row shows the one case at-least-once delivery cannot avoid (HEC indexed a batch but its
answer was lost), which searches dedup on alert_id. Exit status 1 if a scenario breaks this.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cloudtrail_anomaly.domain.alerts import Alert
from cloudtrail_anomaly.domain.model import Event, Principal, Severity
from cloudtrail_anomaly.ports import Outbox, PendingAlert
from cloudtrail_anomaly.sinks.splunk_hec import HecSettings, SplunkHecSink
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline
from cloudtrail_anomaly.usecases.deliver import Deliverer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "00000000-fau1-7000-0000-hecfaults000"
ACCOUNT = "123456789012"
T0 = 1_717_200_000


def load_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hec_server", ROOT / "tests" / "hec_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hec_server"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def make_alerts(n: int) -> list[PendingAlert]:
    out = []
    for i in range(n):
        who = Principal("IAMUser", f"arn:aws:iam::{ACCOUNT}:user/u{i}", f"u{i}")
        event = Event(
            who, ACCOUNT, "iam.amazonaws.com:CreateAccessKey", "iam.amazonaws.com",
            "CreateAccessKey", "us-east-1", T0 + i, event_id=f"ev-{i}",
        )  # fmt: skip
        alert = Alert(ACCOUNT, who, [event], Severity.HIGH, ["sensitive action"], [f"obj-{i}"])
        out.append(PendingAlert.of(alert))
    return out


@dataclass
class Scenario:
    name: str
    faults: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # What a person (or time) fixes before the next delivery round; None: one round only.
    fix: Callable[[Any, dict[str, Any]], None] | None = None
    bad: tuple[int, ...] = ()  # alerts (by position) HEC refuses as bad events
    crash: bool = False  # stage in a SQLite outbox, "crash", reopen, then deliver
    expect_duplicates: int = 0


@dataclass
class Row:
    name: str
    alerts: int
    requests: int
    retried: int
    delivered: int
    dead_lettered: int
    pending: int
    duplicates: int
    ok: bool
    note: str


def scenarios(n: int) -> list[Scenario]:
    def fixed_faults(server: Any, settings: dict[str, Any]) -> None:
        server.faults = server.faults.__class__()

    def fixed_token(server: Any, settings: dict[str, Any]) -> None:
        settings["token"] = TOKEN

    def fixed_index(server: Any, settings: dict[str, Any]) -> None:
        settings["index"] = "security"

    return [
        Scenario("healthy"),
        Scenario("503 busy x3, then ok", {"busy_first": 3}),
        Scenario("500 x2, then ok", {"status_first": 2, "status": 500, "status_body": {}}),
        Scenario(
            "429 Retry-After 1, then ok",
            {"status_first": 1, "status": 429, "status_body": {}, "retry_after": 1},
            {"retry_budget_seconds": 3.0},
        ),
        Scenario(
            "read timeout (stalled, dropped)",
            {"stall_first": 1, "stall_seconds": 1.2},
            {"read_timeout": 0.4},
        ),
        Scenario("outage > retry budget, recovers", {"busy_first": 10_000}, fix=fixed_faults),
        Scenario("code 6 on one event", bad=(n // 3,)),
        Scenario("code 6 on three events", bad=(0, n // 2, n - 1)),
        Scenario("403 bad token, then fixed", {}, {"token": "wrong-token"}, fix=fixed_token),
        Scenario(
            "400 code 7 bad index, then fixed",
            {"allowed_indexes": {"security"}},
            {"index": "secuirty"},
            fix=fixed_index,
        ),
        Scenario("413 too large, split", {"max_body_bytes": 8_000}),
        Scenario("gzip", {}, {"gzip": True}),
        Scenario(
            "indexer ack (2 polls false)", {"ack": True, "ack_false_polls": 2}, {"use_ack": True}
        ),
        Scenario("crash after staging, reopen", {"busy_first": 1}, crash=True),
        Scenario(
            "response lost after indexing",
            {"lose_response_first": 1, "stall_seconds": 1.2},
            {"read_timeout": 0.4, "max_batch_events": 10},
            expect_duplicates=10,
        ),
    ]


def run(hec: ModuleType, scenario: Scenario, n: int, folder: Path) -> Row:
    alerts = make_alerts(n)
    by_position = [a.alert_id for a in alerts]
    faults = hec.Faults(**scenario.faults)
    faults.bad_alert_ids = {by_position[i] for i in scenario.bad}
    settings: dict[str, Any] = {
        "token": TOKEN,
        "max_batch_events": 25,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "retry_budget_seconds": 1.0,
        "ack_poll_seconds": 0.05,
        **scenario.settings,
    }
    counters: Counter[str] = Counter()
    with hec.HecServer(TOKEN, faults) as server:
        outbox: Outbox
        if scenario.crash:
            state = folder / f"{abs(hash(scenario.name))}.sqlite"
            SqliteBaseline(state).stage(alerts)  # the process dies before delivering
            outbox = SqliteBaseline(state)
        else:
            outbox = MemoryOutbox()
            outbox.stage(alerts)
        notes = []
        for round_ in range(2):
            sink = SplunkHecSink(HecSettings(server.url, **settings))
            done = Deliverer(outbox, sink).deliver_pending()
            counters.update(done.counters)
            if done.counters["ack_polls"]:
                notes.append(f"{done.counters['ack_polls']} ack polls")
            if done.config_error:
                notes.append("config error: stopped")
            elif done.still_pending:
                notes.append(f"{done.still_pending} pending")
            if round_ == 0 and scenario.fix is not None and done.still_pending:
                scenario.fix(server, settings)
                notes.append("fixed")
                continue
            break
        arrived = server.alert_counts()
        duplicates = server.duplicates()
    pending_ids = {a.alert_id for a in outbox.pending(n + 1)}
    dead_ids = {a.alert_id for a, _ in outbox.dead_letters()}
    delivered_ids = set(by_position) - pending_ids - dead_ids
    expected_dead = {by_position[i] for i in scenario.bad}
    ok = (
        not pending_ids
        and dead_ids == expected_dead
        and set(arrived) == delivered_ids
        and duplicates == scenario.expect_duplicates
    )
    note = ", ".join(notes) or "-"
    if scenario.expect_duplicates:
        note = "at-least-once limit: same alert_id, dedup in search"
    return Row(
        scenario.name,
        n,
        counters["requests"],
        counters["retries"],
        len(delivered_ids),
        len(dead_ids),
        len(pending_ids),
        duplicates,
        ok,
        note,
    )


def render(rows: list[Row], markdown: bool) -> str:
    head = [
        "scenario", "alerts", "requests", "retried", "delivered", "dead-lettered", "pending",
        "duplicates", "ok", "note",
    ]  # fmt: skip
    cells = [
        [
            r.name, str(r.alerts), str(r.requests), str(r.retried), str(r.delivered),
            str(r.dead_lettered), str(r.pending), str(r.duplicates), "yes" if r.ok else "NO",
            r.note,
        ]
        for r in rows
    ]  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *cells, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 9) else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*line).rstrip() for line in [head, *cells])


def run_all(n: int) -> list[Row]:
    hec = load_server()
    with tempfile.TemporaryDirectory() as folder:
        return [run(hec, s, n, Path(folder)) for s in scenarios(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=40, help="alerts per scenario")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="log: %(message)s")
    rows = run_all(args.alerts)
    print(render(rows, args.markdown))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
