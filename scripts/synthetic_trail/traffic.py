"""The steady traffic: hourly activity patterns, calls and runs (bursts of calls by one
session), each hour's events, and the early coverage of every principal's actions."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence

from synthetic_trail.actions import Action, is_global, is_read
from synthetic_trail.clock import DAY, HOUR
from synthetic_trail.world import JSON, Event, Principal, Session, World

# ---------------------------------------------------------------------------------------------
# Time patterns.


def _factor(pattern: str, hod: int, weekday: int) -> float:
    weekend = weekday >= 5
    if pattern == "business":
        base = 1.0 if 9 <= hod < 18 else 0.35 if hod in (8, 18, 19) else 0.02
        return base * (0.06 if weekend else 1.0)
    if pattern == "ci":
        base = 1.0 if 9 <= hod < 19 else 0.15 if hod in (7, 8, 19, 20) else 0.0
        return base * (0.04 if weekend else 1.0)
    if pattern == "app":
        return (0.55 + 0.45 * math.cos((hod - 14) / 24 * 2 * math.pi)) * (0.7 if weekend else 1)
    if pattern == "nightly":
        return 1.0 if hod == 2 else 0.0
    return 1.0  # flat


PATTERNS = ("business", "ci", "app", "nightly", "flat")
FACTORS = {p: [[_factor(p, h, d) for h in range(24)] for d in range(7)] for p in PATTERNS}
DAY_NORM = {p: sum(FACTORS[p][0]) for p in PATTERNS}  # a weekday's total


def _hour_factor(p: Principal, hour_start: int) -> float:
    local = hour_start + p.account.tz * HOUR
    weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday
    return FACTORS[p.pattern][weekday][(local // HOUR) % 24]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k = 0
    prod = rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# ---------------------------------------------------------------------------------------------
# Event generation.


def region_for(world: World, p: Principal, action: Action, rng: random.Random) -> str:
    if is_global(action):
        return world.global_region
    if p.regions == "all":
        return rng.choice(world.regions)
    if p.regions == "mostly-home" and rng.random() < 0.12:
        return rng.choice(world.regions)
    return p.account.home_region


def _pick_session(p: Principal, rng: random.Random, action: Action | None = None) -> Session:
    if len(p.sessions) == 1:
        return p.sessions[0]
    if action is not None and action[1] == "ConsoleLogin":
        return next((s for s in p.sessions if s.console), p.sessions[0])
    return rng.choice(p.sessions)


def run(
    world: World,
    p: Principal,
    start: int,
    rng: random.Random,
    *,
    full: bool = False,
    extra: Sequence[Action] = (),
) -> list[Event]:
    """One burst of calls by one session.

    A pipeline or a scan executes its whole action list in order (reads, then some writes); a
    poll, an invocation or a person clicking around draws `run_sample` calls on average from
    the principal's weighted actions. `full` executes every action once.
    """
    logins = [a for a in p.actions if a[1] == "ConsoleLogin"]
    sess = _pick_session(p, rng, logins[0] if full and logins else None)
    signs_in = sess.console  # only a browser session signs in
    late = [a for since, a in p.late_actions if start >= since]
    out: list[Event] = []
    t = float(start)
    lo, hi = p.run_gap

    def emit(action: Action, region: str, ov: JSON | None = None) -> None:
        nonlocal t
        out.append(Event(int(t), world.next_seq(), p, sess, action, region, ov))
        t += rng.uniform(lo, hi)

    if p.web_identity:
        emit(("sts", "AssumeRoleWithWebIdentity"), p.account.home_region, {"identity": "web"})
    if p.regions == "all":
        regions = world.regions
    elif p.regions == "mostly-home" and rng.random() < 0.12:
        regions = [rng.choice(world.regions)]
    else:
        regions = [p.account.home_region]
    if p.run_sample and not full:
        total = p.cum_weights[-1]
        for i, region in enumerate(regions):
            k = rng.randint(1, 2 * p.run_sample - 1)
            chosen = [
                p.actions[bisect.bisect(p.cum_weights, rng.random() * total)] for _ in range(k)
            ]
            # Signing in comes first, and only in the browser.
            chosen = [a for a in chosen if a in logins and signs_in] + [
                a for a in chosen if a not in logins
            ]
            for action in chosen:
                if not (is_global(action) and i > 0):
                    emit(action, world.global_region if is_global(action) else region)
    else:
        reads = [a for a in p.actions if is_read(a)]
        writes = [a for a in p.actions if not is_read(a) and a not in logins]
        for action in logins if signs_in else []:
            emit(action, world.global_region)
        for i, region in enumerate(regions):
            for action in reads:
                if not (is_global(action) and i > 0):
                    emit(action, world.global_region if is_global(action) else region)
        n = len(writes) if full else min(len(writes), rng.randint(0, p.run_writes))
        for action in writes if n == len(writes) else rng.sample(writes, n):
            emit(action, world.global_region if is_global(action) else regions[0])
    for action in [*late, *extra]:
        emit(action, world.global_region if is_global(action) else regions[0])
    return out


def generate_hour(world: World, hour_start: int, rng: random.Random) -> list[Event]:
    """The steady population's events whose run or call starts in this hour."""
    out: list[Event] = []
    for p in world.principals:
        if p.active_from is not None and hour_start + HOUR <= p.active_from:
            continue
        f = _hour_factor(p, hour_start)
        if f <= 0.0:
            continue
        scale = world.scale if p.scaled else 1.0
        if p.style == "run":
            expected = p.rate * scale * f / DAY_NORM[p.pattern]
            if p.pattern == "nightly":  # a scheduled job: no skipped nights
                runs = int(expected) + (rng.random() < expected % 1)
            else:
                runs = _poisson(rng, expected)
            for _ in range(runs):
                start = hour_start + rng.randrange(HOUR)
                if p.active_from is None or start >= p.active_from:
                    out.extend(run(world, p, start, rng))
            continue
        total = p.cum_weights[-1]
        for _ in range(_poisson(rng, p.rate * scale * f)):
            ts = hour_start + rng.randrange(HOUR)
            if p.active_from is not None and ts < p.active_from:
                continue
            action = p.actions[bisect.bisect(p.cum_weights, rng.random() * total)]
            out.append(_call(world, p, ts, action, rng))
    return out


def _call(world: World, p: Principal, ts: int, action: Action, rng: random.Random) -> Event:
    """One call of `action` by `p` at `ts`, from one of its sessions, in the region it uses."""
    return Event(
        ts,
        world.next_seq(),
        p,
        _pick_session(p, rng, action),
        action,
        region_for(world, p, action, rng),
    )


def _busy_time(world: World, p: Principal, first: int, days: int, rng: random.Random) -> int:
    """A random time in [first, first + days) weighted by the principal's activity pattern."""
    hours = [first + h * HOUR for h in range(days * 24)]
    weights = [_hour_factor(p, h) for h in hours]
    if sum(weights) <= 0:
        weights = [1.0] * len(hours)
    return rng.choices(hours, weights=weights)[0] + rng.randrange(HOUR - 600)


def coverage_events(world: World, history_days: int) -> list[Event]:
    """Each steady principal does each of its actions at least once early in the history.

    Rare actions drawn at random could otherwise first appear in the live phase and read as
    novelty nobody injected.
    """
    rng = random.Random(f"{world.seed}:coverage")
    days = min(history_days, 3)
    out: list[Event] = []
    for p in world.principals:
        if p.active_from is not None:
            continue
        if p.style == "run":
            out.extend(run(world, p, _busy_time(world, p, world.t0, days, rng), rng, full=True))
            continue
        for action in p.actions:
            out.append(_call(world, p, _busy_time(world, p, world.t0, days, rng), action, rng))
    return out
