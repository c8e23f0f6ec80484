"""How well the alert policy separates the injected intrusions from benign novelty on a trail
written by scripts/generate_sample.py (issue 16), after `baseline` + `replay` have run on it:

    python scripts/evaluate_policy.py sample [--learning-days 15] [--json out.json]

It reads `scenarios.json` (what was injected), `alerts.jsonl` (what the detector said) and the
trail's objects (who was active on which day), and reports:

- per intrusion: the severity of the alert that holds its **first** new action, whether that is
  at least medium ("flagged at its first action"), the highest severity any of its alerts
  reached, and how long after its first action the first alert at >= medium came;
- **benign alerts at >= medium per 50 active principal-days after learning**: the alerts at
  medium or above that are not an intrusion's and came after their principal's learning period
  (`--learning-days` from its first call in the trail; root has none), divided by the
  (principal, UTC day) pairs of the live phase with at least one call after that period, times
  50. Numerator and denominator count the same principal-days; the benign alerts raised during
  a principal's learning period (a sensitive action breaks through it, rule 2) are listed
  apart, never left out.

The figures describe this one generated month; they are a regression yardstick, not the
policy's defaults' justification (docs/alert-policy.md gives those from principles).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudtrail_anomaly.domain.detector import DetectionSettings
from cloudtrail_anomaly.domain.events import parse_event_time
from cloudtrail_anomaly.domain.extract import Extractor
from cloudtrail_anomaly.trail.reader import read_compact

SEVERITIES = ("informational", "low", "medium", "high", "critical")
RANK = {name: i for i, name in enumerate(SEVERITIES)}
MEDIUM = RANK["medium"]
DAY = 86400


@dataclass(frozen=True, slots=True)
class Intrusion:
    name: str
    principal: str
    first_action: str
    first_action_severity: str | None  # None: no alert holds it
    flagged_at_first_action: bool
    highest_severity: str | None
    alerts: int
    minutes_to_medium: float | None  # its first action to the last event of its first >= medium


@dataclass(frozen=True, slots=True)
class Evaluation:
    intrusions: list[Intrusion]
    benign_at_medium: int  # after their principal's learning period
    benign_at_medium_alerts: list[str]  # "severity principal detector: actions"
    benign_at_medium_in_learning: list[str]  # raised during the principal's learning period
    active_principal_days: int
    benign_at_medium_per_50_principal_days: float | None


def activity(trail: Path) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], set[int]]]:
    """First call (event time) of every principal over the whole trail, and its UTC days with
    a call in the live phase: the detector's own reading and extraction of each object
    (`Extractor`, with the default per-person keys of Identity Center roles), so principals are
    keyed (account, baseline key) as alerts name them; AWS services left out."""
    extractor = Extractor(DetectionSettings().per_session_roles)
    first: dict[tuple[str, str], int] = {}
    live_days: dict[tuple[str, str], set[int]] = defaultdict(set)
    for phase in ("history", "live"):
        for path in sorted((trail / phase).rglob("*.json.gz")):
            with path.open("rb") as fh:
                ex = extractor.extract(read_compact(fh))
            for (account, key), (principal, ts) in ex.principals.items():
                if principal.is_service:
                    continue
                if first.get((account, key), ts) >= ts:
                    first[(account, key)] = ts
                if phase == "live":
                    live_days[(account, key)].add(ts // DAY)
    return first, live_days


def evaluate(
    scenarios: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    first_seen: dict[tuple[str, str], int],
    live_days: dict[tuple[str, str], set[int]],
    learning_days: float,
) -> Evaluation:
    attacks = [s for s in scenarios if s["kind"] == "attack"]
    by_principal: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        by_principal[(alert["account_id"], alert["principal"]["arn"])].append(alert)

    claimed: set[str] = set()
    intrusions: list[Intrusion] = []
    for s in attacks:
        key = (s["account_id"], s["principal_key"])
        wanted = set(s["actions"])
        mine = [
            a
            for a in by_principal.get(key, [])
            if wanted & {n["action"] for n in a["new_actions"]} or a["detector"] != "new_action"
        ]
        claimed.update(a["alert_id"] for a in mine)
        first = s["actions"][0]
        # The alert raised at its first action: the earliest that holds it (a later follow-up,
        # e.g. slow novelty, lists it again but came days later).
        holding = [a for a in mine if first in {n["action"] for n in a["new_actions"]}]
        at_first = min(holding, key=lambda a: (a["last_event_time"], a["alert_id"]), default=None)
        first_sev = None if at_first is None else at_first["severity"]
        highest = max((a["severity"] for a in mine), key=RANK.__getitem__, default=None)
        start = parse_event_time(s["start"]) or 0
        medium_times = [
            parse_event_time(a["last_event_time"]) or 0  # an alert is raised at its last
            for a in mine
            if RANK[a["severity"]] >= MEDIUM
        ]
        intrusions.append(
            Intrusion(
                name=s["name"],
                principal=s["principal_key"],
                first_action=first,
                first_action_severity=first_sev,
                flagged_at_first_action=first_sev is not None and RANK[first_sev] >= MEDIUM,
                highest_severity=highest,
                alerts=len(mine),
                minutes_to_medium=(
                    round((min(medium_times) - start) / 60, 1) if medium_times else None
                ),
            )
        )

    learn = int(learning_days * DAY)

    def learned_at(account: str, principal: str) -> int:
        """When the principal's learning ended, as far as the trail shows."""
        first = first_seen.get((account, principal), 0)
        return first + (0 if principal.endswith(":root") else learn)

    benign: list[dict[str, Any]] = []
    in_learning: list[dict[str, Any]] = []
    for a in alerts:
        if a["alert_id"] in claimed or RANK[a["severity"]] < MEDIUM:
            continue
        at = parse_event_time(a["last_event_time"]) or 0
        learned = at >= learned_at(a["account_id"], a["principal"]["arn"])
        (benign if learned else in_learning).append(a)
    days = 0
    for key, seen in live_days.items():
        end = learned_at(*key)
        days += sum(1 for d in seen if d * DAY >= end)
    return Evaluation(
        intrusions=intrusions,
        benign_at_medium=len(benign),
        benign_at_medium_alerts=[_line(a) for a in benign],
        benign_at_medium_in_learning=[_line(a) for a in in_learning],
        active_principal_days=days,
        benign_at_medium_per_50_principal_days=(
            round(len(benign) * 50 / days, 3) if days else None
        ),
    )


def _line(a: dict[str, Any]) -> str:
    actions = ", ".join(n["action"] for n in a["new_actions"])
    return f"{a['severity']} {a['principal']['arn']} {a['detector']}: {actions}"


def render(ev: Evaluation) -> str:
    lines = [
        "| intrusion | severity at its first action | highest | alerts | minutes to >= medium |",
        "|---|---|---|---|---|",
    ]
    for i in ev.intrusions:
        mark = "yes" if i.flagged_at_first_action else "**no**"
        lines.append(
            f"| {i.name} | {i.first_action_severity or 'none'} ({mark}) | "
            f"{i.highest_severity or 'none'} | {i.alerts} | "
            f"{'-' if i.minutes_to_medium is None else i.minutes_to_medium} |"
        )
    flagged = sum(i.flagged_at_first_action for i in ev.intrusions)
    rate = ev.benign_at_medium_per_50_principal_days
    lines += [
        "",
        f"intrusions flagged >= medium at their first action: {flagged} of {len(ev.intrusions)}",
        f"benign alerts >= medium: {ev.benign_at_medium} over {ev.active_principal_days} active "
        f"principal-days after learning = {'n/a' if rate is None else rate} per 50 "
        "(target <= 0.25)",
        *(f"  {line}" for line in ev.benign_at_medium_alerts),
        f"benign alerts >= medium during their principal's learning period: "
        f"{len(ev.benign_at_medium_in_learning)}",
        *(f"  {line}" for line in ev.benign_at_medium_in_learning),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sample", type=Path, help="generate_sample.py's --out, after make demo")
    parser.add_argument("--alerts", type=Path, help="default: SAMPLE/alerts.jsonl")
    parser.add_argument("--learning-days", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    alerts_path = args.alerts or args.sample / "alerts.jsonl"
    for need in (args.sample / "scenarios.json", alerts_path):
        if not need.is_file():
            print(f"evaluate_policy: {need} not found (run make demo first)", file=sys.stderr)
            return 2
    scenarios = json.loads((args.sample / "scenarios.json").read_text())
    alerts = [json.loads(line) for line in alerts_path.read_text().splitlines() if line]
    first_seen, live_days = activity(args.sample)
    ev = evaluate(scenarios, alerts, first_seen, live_days, args.learning_days)
    print(render(ev))
    if args.json:
        doc = asdict(ev) | {"generated": datetime.now(UTC).strftime("%Y-%m-%d")}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
