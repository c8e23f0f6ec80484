"""An alert's size is bounded by design (issue 14, item 4).

One principal's 577 new actions with a 512-character user agent made an alert larger than a
DynamoDB item: its claim transaction failed, the earlier transactions committed without it, and
the retry alerted only the last part, informational. An alert now lists at most 100 new actions
(the sensitive ones first) with their total and a digest of the full list, cuts every string it
copies to a documented length, and is judged on, and reports the count of, every new action.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from botocore.exceptions import ClientError
from cloudtrail_anomaly.domain.alerts import (
    FIELD_LIMITS,
    MAX_ALERT_BYTES,
    MAX_LISTED_ACTIONS,
    TRUNCATED,
    Alert,
    clip,
)
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.extract import REGION_PREFIX
from cloudtrail_anomaly.domain.model import Event, Principal, Severity, TupleKey, iso
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.stores.dynamodb.baseline import DynamoDbBaseline
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import ACCOUNT, T0, record
from tests.dynamo_tables import BASELINE_TABLE

TABLE = BASELINE_TABLE
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
SENSITIVE = ["cloudtrail.amazonaws.com:StopLogging", "iam.amazonaws.com:CreateAccessKey"]
DYNAMODB_ITEM_LIMIT = 400 * 1024


def enumeration(n: int = 577, user_agent: str = "A" * 512) -> list[dict[str, Any]]:
    """An enumeration tool's object: `n` new actions of one user in a minute or so, the two
    sensitive ones first, every record carrying the caller's (long) user agent."""
    actions = [*SENSITIVE, *(f"ec2.amazonaws.com:Describe{i:04d}" for i in range(n - 2))]
    return [record(a, T0 + i // 10, userAgent=user_agent) for i, a in enumerate(actions)]


def digest(actions: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(actions)).encode()).hexdigest()


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item: attribute names plus values."""
    size = 0
    for name, value in item.items():
        ((kind, v),) = value.items()
        size += len(name.encode()) + (len(v) if kind == "B" else len(str(v).encode()))
    return size


def detector(baseline: Any) -> Detector:
    return Detector(baseline, AlertPolicy(PolicySettings(learning_days=0)))


def test_577_new_actions_and_a_long_user_agent_make_one_bounded_alert(dynamodb: Any) -> None:
    records = enumeration()
    db = DynamoDbBaseline(dynamodb, TABLE, write_concurrency=1)
    result = detector(db).process(records, "bucket/enumeration.json.gz")

    assert db.errors == {} and db.take_failed_claims() == 0
    (alert,) = result.alerts
    assert alert.detector == "new_action"
    assert len(alert.new_actions) == 577  # judged on all of them
    (pending,) = DynamoDbOutbox(dynamodb, TABLE).pending()
    assert pending.alert_id == alert.alert_id
    stored = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "OUTBOX"}, "sk": {"S": f"P#{alert.alert_id}"}}
    )["Item"]
    assert item_size(stored) < DYNAMODB_ITEM_LIMIT
    assert len(pending.document) < MAX_ALERT_BYTES

    doc = orjson.loads(pending.document)
    assert doc["new_actions_total"] == 577
    assert doc["new_actions_truncated"] is True
    assert doc["new_actions_digest"] == digest(
        [r["eventSource"] + ":" + r["eventName"] for r in records]
    )
    listed = [a["action"] for a in doc["new_actions"]]
    assert 0 < len(listed) <= MAX_LISTED_ACTIONS
    assert set(SENSITIVE) <= set(listed)  # listed first: never dropped from the list
    assert doc["severity"] == "critical"
    assert (
        "sensitive action cloudtrail:StopLogging (defense-evasion): raised to critical"
        in (doc["reasons"])
    )
    assert doc["reasons"][0] == "577 new actions at once (threshold 5): medium"
    ua = doc["new_actions"][0]["user_agent"]
    assert len(ua) == FIELD_LIMITS["user_agent"] and ua.endswith(TRUNCATED)

    # Every tuple is claimed: the actions and the region, nothing left for a retry to re-alert.
    keys = [TupleKey(ACCOUNT, ALICE, a) for a in [*SENSITIVE]] + [
        TupleKey(ACCOUNT, ALICE, r["eventSource"] + ":" + r["eventName"]) for r in records[2:]
    ]
    keys.append(TupleKey(ACCOUNT, ALICE, REGION_PREFIX + "us-east-1"))
    assert len(DynamoDbBaseline(dynamodb, TABLE).lookup(keys)) == 578
    again = detector(DynamoDbBaseline(dynamodb, TABLE)).process(records, "bucket/again.json.gz")
    assert again.alerts == [] and again.stats["new_tuples"] == 0


def test_whichever_claim_transaction_fails_every_new_action_is_reported(dynamodb: Any) -> None:
    """577 tuples take seven transactions; the third fails. The first carried the alert over
    all 577, the retry claims the third's 88 and reports them again: a duplicate, no loss."""

    class ThirdFails:
        def __init__(self, inner: Any) -> None:
            self._inner, self.calls = inner, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == 3:
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "down"}},
                    "TransactWriteItems",
                )
            return self._inner.transact_write_items(**kwargs)

    records = enumeration()
    db = DynamoDbBaseline(ThirdFails(dynamodb), TABLE, write_concurrency=1)
    first = detector(db).process(records, "obj")
    assert db.take_failed_claims() == 88  # the object fails, and is delivered again
    (alert,) = first.alerts
    assert len(alert.new_actions) == 577 and alert.severity == "critical"
    retry = detector(DynamoDbBaseline(dynamodb, TABLE)).process(records, "obj")
    (rest,) = retry.alerts
    assert len(rest.new_actions) == 88
    reported = {e.action for a in (alert, rest) for e in a.new_actions}
    assert len(reported) == 577
    assert {
        orjson.loads(p.document)["new_actions_total"]
        for p in DynamoDbOutbox(dynamodb, TABLE).pending()
    } == {577, 88}


# -- the alert document -------------------------------------------------------------------------


def event(action: str, t: int = T0, **fields: Any) -> Event:
    source, _, name = action.rpartition(":")
    return Event(
        principal=Principal("IAMUser", ALICE, "alice"),
        account_id=ACCOUNT,
        action=action,
        event_source=source,
        event_name=name,
        region="us-east-1",
        event_time=t,
        event_id=f"id-{action}",
        **fields,
    )


def alert(events: list[Event], reasons: tuple[str, ...] = ("because",), **fields: Any) -> Alert:
    return Alert(
        account_id=ACCOUNT,
        principal=Principal("IAMUser", ALICE, "alice"),
        new_actions=events,
        severity=Severity.MEDIUM,
        reasons=list(reasons),
        source_objects=["bucket/key.json.gz"],
        **fields,
    )


def test_an_alert_that_fits_lists_every_new_action_as_before() -> None:
    events = [event(f"ec2.amazonaws.com:Describe{i}", T0 + 10 - i) for i in range(3)]
    doc = alert(list(events)).to_dict()
    assert [a["action"] for a in doc["new_actions"]] == [e.action for e in reversed(events)]
    assert doc["new_actions_total"] == 3
    assert doc["new_actions_truncated"] is False
    assert doc["new_actions_digest"] == digest([e.action for e in events])
    assert doc["new_actions"][0]["user_agent"] == ""


def test_the_sensitive_actions_are_listed_first_and_the_list_stays_in_time_order() -> None:
    events = [event(f"ec2.amazonaws.com:Describe{i:03d}", T0 + i) for i in range(300)]
    late = [event(a, T0 + 1000 + i) for i, a in enumerate(SENSITIVE)]
    doc = alert([*events, *late], listed_first=frozenset(SENSITIVE)).to_dict()
    listed = [a["action"] for a in doc["new_actions"]]
    assert len(listed) == MAX_LISTED_ACTIONS
    assert listed[-2:] == SENSITIVE  # kept although the latest; in their place in time
    assert listed[:-2] == [e.action for e in events[: MAX_LISTED_ACTIONS - 2]]
    assert doc["new_actions_total"] == 302 and doc["new_actions_truncated"] is True
    assert doc["first_event_time"] == iso(T0)  # of all the new actions, listed or not
    assert doc["last_event_time"] == iso(T0 + 1001)


def test_caller_controlled_strings_are_cut_with_a_marker() -> None:
    long = "x" * 600
    principal = Principal("AssumedRole", "arn:aws:iam::1:role/r#" + long, "r", session=long)
    doc = Alert(
        account_id=ACCOUNT,
        principal=principal,
        new_actions=[event("s3.amazonaws.com:GetObject", user_agent=long, source_ip=long)],
        severity=Severity.LOW,
        reasons=["r" * 2000],
        source_objects=["k" * 2000],
        account_name=long,
        account_owner=long,
    ).to_dict()
    cut = {
        "user_agent": doc["new_actions"][0]["user_agent"],
        "source_ip": doc["new_actions"][0]["source_ip"],
        "principal.session": doc["principal"]["session"],
        "principal.arn": doc["principal"]["arn"],
        "account_name": doc["account_name"],
        "account_owner": doc["account_owner"],
        "reason": doc["reasons"][0],
        "source_object": doc["source_objects"][0],
    }
    for name, value in cut.items():
        assert len(value) == FIELD_LIMITS[name], name
        assert value.endswith(TRUNCATED), name
    assert clip("short", 10) == "short"


def test_reasons_past_their_budget_end_with_how_many_were_left_out() -> None:
    reasons = [f"reason {i}: " + "y" * 900 for i in range(40)]
    doc = alert([event("s3.amazonaws.com:GetObject")], tuple(reasons)).to_dict()
    kept = doc["reasons"]
    assert kept[: len(kept) - 1] == reasons[: len(kept) - 1]
    assert kept[-1] == f"{40 - len(kept) + 1} more reason(s){TRUNCATED}"


def test_a_reason_names_at_most_ten_actions_and_twenty_sensitive_ones_get_a_line_each() -> None:
    sensitive = [f"s3.amazonaws.com:DeleteBucket{i:02d}" for i in range(25)]
    denied = [f"ec2.amazonaws.com:Describe{i:02d}" for i in range(15)]
    policy = AlertPolicy(
        PolicySettings(learning_days=0, sensitive_actions_add=("s3:DeleteBucket*",))
    )
    records = [record(a, T0 + i) for i, a in enumerate(sensitive)] + [
        record(a, T0 + 100 + i, errorCode="AccessDenied") for i, a in enumerate(denied)
    ]
    (only,) = Detector(MemoryBaseline(), policy).process(records, "obj").alerts
    lines = [r for r in only.reasons if r.startswith("sensitive action")]
    assert len(lines) == 20
    assert (
        "5 more sensitive actions: s3:DeleteBucket20, s3:DeleteBucket21, s3:DeleteBucket22, "
        "s3:DeleteBucket23, s3:DeleteBucket24 (already high)" in only.reasons
    )
    (denied_line,) = [r for r in only.reasons if "were denied" in r]
    assert denied_line.endswith("ec2:Describe09 and 5 more")


# -- the bound, whatever the input --------------------------------------------------------------

# Strings that are long, multi-byte or escaped in JSON (a control character takes six bytes).
_piece = st.sampled_from(["a", "\x01", '"', "é", "\U0001d54f", "\\", " "]) | st.text(max_size=3)
_text = st.builds(lambda p, n: p * n, _piece, st.integers(0, 3000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 700),
    values=st.lists(_text, min_size=9, max_size=9),
    principal=st.lists(_text, min_size=4, max_size=4),
    reasons=st.lists(_text, max_size=60),
    sources=st.lists(_text, min_size=1, max_size=20),
    names=st.lists(_text, min_size=3, max_size=3),
    sensitive_every=st.integers(1, 50),
)
def test_the_serialized_alert_stays_under_its_bound_for_any_input(
    n: int,
    values: list[str],
    principal: list[str],
    reasons: list[str],
    sources: list[str],
    names: list[str],
    sensitive_every: int,
) -> None:
    source, name, region, error, ip, ua, eid, action, extra = values
    events = [
        Event(
            principal=Principal(*principal),
            account_id=names[2],
            action=f"{action}{i}",
            event_source=source,
            event_name=name,
            region=region,
            event_time=T0 + i,
            event_id=eid,
            error_code=error,
            source_ip=ip,
            user_agent=ua + extra,
        )
        for i in range(n)
    ]
    subject = Alert(
        account_id=names[2],
        principal=Principal(*principal),
        new_actions=events,
        severity=Severity.HIGH,
        reasons=reasons,
        source_objects=sources,
        account_name=names[0],
        account_owner=names[1],
        role_created=T0,
        listed_first=frozenset(f"{action}{i}" for i in range(0, n, sensitive_every)),
        suppressed_reason="below_min_severity",
    )
    doc = subject.to_dict()
    assert len(orjson.dumps(doc)) < MAX_ALERT_BYTES
    assert doc["new_actions_total"] == n
    assert 1 <= len(doc["new_actions"]) <= MAX_LISTED_ACTIONS
    assert doc["new_actions_truncated"] == (len(doc["new_actions"]) < n)
    assert doc["reasons"] or not reasons
    assert doc["source_objects"]
