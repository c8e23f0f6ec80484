"""SplunkHecSink against a real local HTTP server that speaks HEC (tests/hec_server.py).

Each fault scenario asserts what reached the server (by alert_id: every alert exactly once,
no duplicates), what the report says (delivered, dead-lettered, pending) and how many requests
it took. Sleeps are recorded, not waited; only the read-timeout scenarios wait (a fraction of a
second) for a real socket timeout.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cloudtrail_anomaly.domain.alerts import Alert
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import Event, Principal, Severity
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import DeliveryReport, PendingAlert
from cloudtrail_anomaly.sinks import as_pending
from cloudtrail_anomaly.sinks.splunk_hec import (
    HecSettings,
    HecSettingsError,
    SplunkHecSink,
    TokenScrubber,
)
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests.hec_server import HecServer, self_signed_tls

TOKEN = "5e1f0c2a-70ke-n0t-1n-l0gs-0f4c3d2b1a99"
T0 = 1_717_200_000
ACCOUNT = "123456789012"


def make_alert(i: int, *, reasons: int = 1, severity: Severity = Severity.HIGH) -> Alert:
    who = Principal("IAMUser", f"arn:aws:iam::{ACCOUNT}:user/u{i}", f"u{i}")
    event = Event(
        who, ACCOUNT, "iam.amazonaws.com:CreateAccessKey", "iam.amazonaws.com", "CreateAccessKey",
        "us-east-1", T0 + i, event_id=f"ev-{i}",
    )  # fmt: skip
    return Alert(ACCOUNT, who, [event], severity, ["r" * 80] * reasons, [f"obj-{i}"])


def pending(n: int) -> list[PendingAlert]:
    return [PendingAlert.of(make_alert(i)) for i in range(n)]


class FakeTime:
    """A monotonic clock that only moves when the sink sleeps (and by `advance`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def hec() -> Iterator[HecServer]:
    with HecServer(TOKEN) as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def sink_for(
    server: HecServer, fake_time: FakeTime, *, token: str = TOKEN, **settings: object
) -> SplunkHecSink:
    return SplunkHecSink(
        HecSettings(server.url, token, **settings),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda: 1.0,  # the ceiling of each backoff, so delays are predictable
    )


def assert_partition(report: DeliveryReport, alerts: list[PendingAlert]) -> None:
    """Every alert is in exactly one of delivered, dead_lettered, pending."""
    ids = [a.alert_id for a in alerts]
    parts = [*report.delivered, *report.dead_lettered, *report.pending]
    assert sorted(parts) == sorted(ids)


def assert_each_once(server: HecServer, ids: list[str]) -> None:
    counts = server.alert_counts()
    assert server.duplicates() == 0
    assert counts == dict.fromkeys(ids, 1)


# -- the envelope and the happy path ------------------------------------------------------------


def test_events_carry_the_envelope_and_the_alert_verbatim(
    hec: HecServer, fake_time: FakeTime
) -> None:
    alerts = [make_alert(0), make_alert(1)]
    sink = sink_for(hec, fake_time, index="security", host="collector-1", source="ct")
    report = sink.deliver(as_pending(alerts))
    assert report.delivered == [a.alert_id for a in alerts]
    assert (report.dead_lettered, report.pending, report.config_error) == ({}, {}, "")
    assert [e["event"] for e in hec.events] == [a.to_dict() for a in alerts]
    first = hec.events[0]
    assert first["time"] == alerts[0].first_event_time
    assert first["sourcetype"] == "cloudtrail_anomaly:alert"
    assert (first["index"], first["host"], first["source"]) == ("security", "collector-1", "ct")
    assert report.counters["requests"] == 1 and report.counters["retries"] == 0


def test_host_and_index_are_left_out_when_not_set(hec: HecServer, fake_time: FakeTime) -> None:
    sink_for(hec, fake_time).deliver(pending(1))
    assert set(hec.events[0]) == {"time", "sourcetype", "source", "event"}


def test_the_connection_is_reused_across_requests_and_calls(
    hec: HecServer, fake_time: FakeTime
) -> None:
    sink = sink_for(hec, fake_time, max_batch_events=1)
    sink.deliver(pending(3))
    sink.deliver(pending(2))
    assert len(hec.event_requests()) == 5
    assert len({r.client_port for r in hec.event_requests()}) == 1


# -- batching ---------------------------------------------------------------------------------


def test_batches_respect_the_event_cap(hec: HecServer, fake_time: FakeTime) -> None:
    alerts = pending(5)
    report = sink_for(hec, fake_time, max_batch_events=2).deliver(alerts)
    assert [r.events for r in hec.event_requests()] == [2, 2, 1]
    assert_each_once(hec, [a.alert_id for a in alerts])
    assert len(report.delivered) == 5


def test_batches_respect_the_byte_cap(hec: HecServer, fake_time: FakeTime) -> None:
    alerts = pending(7)
    sink = sink_for(hec, fake_time)
    size = len(sink.envelope(alerts[0]))
    cap = 3 * size + size // 2  # room for three events, not four
    report = sink_for(hec, fake_time, max_batch_bytes=cap).deliver(alerts)
    requests = hec.event_requests()
    assert [r.events for r in requests] == [3, 3, 1]
    assert all(r.raw_bytes <= cap for r in requests)
    assert_each_once(hec, [a.alert_id for a in alerts])
    assert len(report.delivered) == 7


def test_an_alert_bigger_than_the_cap_is_dead_lettered_not_truncated(
    hec: HecServer, fake_time: FakeTime
) -> None:
    alerts = [PendingAlert.of(make_alert(0)), PendingAlert.of(make_alert(1, reasons=50))]
    report = sink_for(hec, fake_time, max_batch_bytes=2_000).deliver(alerts)
    big = alerts[1].alert_id
    assert report.delivered == [alerts[0].alert_id]
    assert "exceeds the HEC request cap of 2,000 bytes" in report.dead_lettered[big]
    assert big not in hec.alert_counts()
    assert_partition(report, alerts)


def test_gzip_bodies_are_compressed_and_arrive_intact(hec: HecServer, fake_time: FakeTime) -> None:
    alerts = pending(20)
    report = sink_for(hec, fake_time, gzip=True).deliver(alerts)
    (request,) = hec.event_requests()
    assert request.gzip and request.body_bytes < request.raw_bytes / 3
    assert_each_once(hec, [a.alert_id for a in alerts])
    assert len(report.delivered) == 20


def test_a_413_splits_the_request(hec: HecServer, fake_time: FakeTime) -> None:
    alerts = pending(4)
    one = len(sink_for(hec, fake_time).envelope(alerts[0]))
    hec.faults.max_body_bytes = 2 * one + 10
    report = sink_for(hec, fake_time).deliver(alerts)
    assert [r.status for r in hec.event_requests()] == [413, 200, 200]
    assert_each_once(hec, [a.alert_id for a in alerts])
    assert len(report.delivered) == 4


# -- retryable faults ---------------------------------------------------------------------------


def test_busy_then_recovered_delivers_each_alert_once(hec: HecServer, fake_time: FakeTime) -> None:
    hec.faults.busy_first = 3
    alerts = pending(10)
    report = sink_for(hec, fake_time).deliver(alerts)
    assert len(report.delivered) == 10 and not report.pending
    assert (report.counters["requests"], report.counters["retries"]) == (4, 3)
    assert fake_time.sleeps == [0.5, 1.0, 2.0]  # exponential (jitter pinned to its ceiling)
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_full_jitter_draws_below_the_exponential_ceiling(hec: HecServer) -> None:
    hec.faults.busy_first = 4
    t = FakeTime()
    draws = iter([0.5, 0.25, 0.0, 0.9])
    sink = SplunkHecSink(
        HecSettings(hec.url, TOKEN), sleep=t.sleep, clock=t.clock, jitter=lambda: next(draws)
    )
    sink.deliver(pending(1))
    assert t.sleeps == pytest.approx([0.25, 0.25, 0.0, 3.6])


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"text": "Internal server error", "code": 8}),
        (502, {}),
        (504, {}),
        (429, {"text": "Too many requests"}),
    ],
)
def test_other_5xx_and_429_are_retried(
    hec: HecServer, fake_time: FakeTime, status: int, body: dict[str, object]
) -> None:
    hec.faults.status_first, hec.faults.status, hec.faults.status_body = 2, status, body
    alerts = pending(3)
    report = sink_for(hec, fake_time).deliver(alerts)
    assert report.counters["retries"] == 2 and len(report.delivered) == 3
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_retry_after_is_honoured(hec: HecServer, fake_time: FakeTime) -> None:
    hec.faults.status_first, hec.faults.status, hec.faults.retry_after = 1, 429, 7
    sink_for(hec, fake_time).deliver(pending(1))
    assert fake_time.sleeps == [7.0]


def test_an_outage_longer_than_the_budget_leaves_everything_pending_then_recovers(
    hec: HecServer, fake_time: FakeTime
) -> None:
    hec.faults.busy_first = 1_000
    outbox = MemoryOutbox()
    alerts = pending(6)
    outbox.stage(alerts)
    sink = sink_for(hec, fake_time, retry_budget_seconds=10, max_batch_events=2)
    done = Deliverer(outbox, sink).deliver_pending()
    assert (done.delivered, done.still_pending, done.config_error) == (0, 6, "")
    assert sum(fake_time.sleeps) <= 10
    # The first request's retries used the budget; the other two requests were not sent.
    assert len(hec.event_requests()) == len(fake_time.sleeps) + 1
    assert "retry budget of 10s spent" in outbox.pending()[0].last_error
    hec.faults.busy_first = 0
    done = Deliverer(outbox, sink).deliver_pending()
    assert (done.delivered, done.still_pending) == (6, 0)
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_a_read_timeout_is_retried_and_the_dropped_request_is_sent_again(
    hec: HecServer, fake_time: FakeTime
) -> None:
    # The server stalls past the client's read timeout and drops the request unindexed.
    hec.faults.stall_first, hec.faults.stall_seconds = 1, 1.2
    alerts = pending(4)
    report = sink_for(hec, fake_time, read_timeout=0.4).deliver(alerts)
    assert len(report.delivered) == 4 and report.counters["retries"] == 1
    assert report.counters["hec_unreachable"] == 1
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_a_response_lost_after_indexing_is_the_one_duplicate_at_least_once_allows(
    hec: HecServer, fake_time: FakeTime
) -> None:
    # HEC indexed the batch but its answer came after the read timeout: the client cannot know,
    # so it sends again. Both copies carry the same alert_id, which searches dedup on.
    hec.faults.lose_response_first, hec.faults.stall_seconds = 1, 1.2
    alerts = pending(2)
    report = sink_for(hec, fake_time, read_timeout=0.4).deliver(alerts)
    assert len(report.delivered) == 2
    assert hec.alert_counts() == {a.alert_id: 2 for a in alerts}


def test_connection_refused_is_retried_within_the_budget_and_stays_pending(
    fake_time: FakeTime,
) -> None:
    server = HecServer(TOKEN)
    url = server.url
    server.stop()  # nothing listens on that port any more
    sink = SplunkHecSink(
        HecSettings(url, TOKEN, retry_budget_seconds=5),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda: 1.0,
    )
    alerts = pending(2)
    report = sink.deliver(alerts)
    assert report.pending and not report.delivered and not report.config_error
    assert "connection failed" in report.pending[alerts[0].alert_id]
    assert sum(fake_time.sleeps) <= 5 and report.counters["retries"] == len(fake_time.sleeps)


# -- bad events ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[0], [2], [4], [1, 3]])
def test_bad_events_are_dead_lettered_and_the_rest_delivered_once(
    hec: HecServer, fake_time: FakeTime, bad: list[int]
) -> None:
    alerts = pending(5)
    bad_ids = {alerts[i].alert_id for i in bad}
    hec.faults.bad_alert_ids = bad_ids
    report = sink_for(hec, fake_time).deliver(alerts)
    assert set(report.dead_lettered) == bad_ids
    for reason in report.dead_lettered.values():
        assert "HTTP 400 code 6 (Invalid data format)" in reason
        assert "invalid-event-number" in reason
    good = [a.alert_id for a in alerts if a.alert_id not in bad_ids]
    assert sorted(report.delivered) == sorted(good)
    assert_each_once(hec, good)  # the events HEC indexed before a bad one were not resent
    assert report.counters["requests"] == len(bad) + (0 if bad[-1] == 4 else 1)
    assert_partition(report, alerts)


@pytest.mark.parametrize(
    ("code", "text"), [(12, "Event field is required"), (13, "Event field cannot be blank")]
)
def test_event_field_errors_are_bad_events_too(
    hec: HecServer, fake_time: FakeTime, code: int, text: str
) -> None:
    hec.faults.status_first, hec.faults.status = 1, 400
    hec.faults.status_body = {"text": text, "code": code, "invalid-event-number": 0}
    alerts = pending(2)
    report = sink_for(hec, fake_time).deliver(alerts)
    assert list(report.dead_lettered) == [alerts[0].alert_id]
    assert f"code {code}" in report.dead_lettered[alerts[0].alert_id]
    assert report.delivered == [alerts[1].alert_id]


def test_a_bad_event_without_its_number_is_found_by_sending_each_alone(
    hec: HecServer, fake_time: FakeTime
) -> None:
    alerts = pending(3)
    hec.faults.status_first, hec.faults.status = 1, 400
    hec.faults.status_body = {"text": "Invalid data format", "code": 6}
    hec.faults.bad_alert_ids = {alerts[1].alert_id}
    report = sink_for(hec, fake_time).deliver(alerts)
    assert [r.events for r in hec.event_requests()] == [0, 1, 1, 1]
    assert list(report.dead_lettered) == [alerts[1].alert_id]
    assert sorted(report.delivered) == sorted([alerts[0].alert_id, alerts[2].alert_id])


# -- configuration errors: stop, keep everything, log once -------------------------------------


def test_a_bad_token_keeps_everything_pending_after_one_request(
    hec: HecServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    alerts = pending(7)
    sink = sink_for(hec, fake_time, token="not-the-token", max_batch_events=2)
    with caplog.at_level(logging.DEBUG):
        report = sink.deliver(alerts)
        again = sink.deliver(alerts)
    assert len(hec.requests) == 2  # one per call, never a retry: no hammering
    assert report.config_error.startswith("HEC configuration error: HTTP 403 code 4")
    assert "check the HEC token" in report.config_error
    assert set(report.pending) == {a.alert_id for a in alerts} and not report.delivered
    assert again.config_error == report.config_error
    assert fake_time.sleeps == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # logged once per sink, not per call
    assert hec.events == []


def test_a_bad_index_is_a_configuration_error(hec: HecServer, fake_time: FakeTime) -> None:
    hec.faults.allowed_indexes = {"security"}
    alerts = pending(3)
    outbox = MemoryOutbox()
    outbox.stage(alerts)
    done = Deliverer(outbox, sink_for(hec, fake_time, index="secuirty")).deliver_pending()
    assert "HTTP 400 code 7 (Incorrect index)" in done.config_error
    assert "check the index" in done.config_error
    assert done.still_pending == 3 and len(hec.requests) == 1


def test_a_wrong_path_is_a_configuration_error(hec: HecServer, fake_time: FakeTime) -> None:
    hec.faults.status_first, hec.faults.status, hec.faults.status_body = 1, 404, {}
    report = sink_for(hec, fake_time).deliver(pending(1))
    assert "HTTP 404" in report.config_error and "check the url" in report.config_error


# -- the token stays secret ----------------------------------------------------------------------


def test_the_token_is_in_no_log_repr_reason_or_exception(
    hec: HecServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    hec.faults.echo_authorization = True  # a server that quotes the header back
    alerts = pending(3)
    hec.faults.bad_alert_ids = {alerts[1].alert_id}
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        good = sink_for(hec, fake_time, retry_budget_seconds=1)
        texts += [repr(good), repr(good.settings), str(good.deliver(alerts))]
        hec.faults.busy_first = 100
        texts.append(str(good.deliver(pending(1))))
        hec.faults.busy_first = 0
        wrong = sink_for(hec, fake_time, token=TOKEN + "-old")
        texts.append(str(wrong.deliver(pending(1))))
        for bad in ({"url": "ftp://splunk"}, {"max_batch_bytes": 1}, {"read_timeout": 0}):
            with pytest.raises(HecSettingsError) as err:
                HecSettings(**{"url": hec.url, "token": TOKEN, **bad})
            texts.append(str(err.value))
        with pytest.raises(HecSettingsError) as err:
            HecSettings.from_env({"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_GZIP": TOKEN})
        texts.append(str(err.value))
    assert any("Invalid data format" in t for t in texts)  # the reasons are there...
    everything = "\n".join([*texts, caplog.text])
    assert TOKEN not in everything  # ...the token is not
    assert "<token>" in everything  # scrubbed where the server echoed it


# The forms a hostile collector (or a proxy in front of it) might echo the token in; each is
# given the Authorization header the sink sent ("Splunk <token>").
def _token(auth: str) -> str:
    return auth.removeprefix("Splunk ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _wrapped(text: str, width: int, sep: str) -> str:
    return sep.join(text[i : i + width] for i in range(0, len(text), width))


ECHOES: dict[str, Callable[[str], str]] = {
    "exact": lambda auth: auth,
    "quote": lambda auth: quote(auth),
    "quote_plus": lambda auth: quote_plus(auth),
    "quote_safe_none": lambda auth: quote(_token(auth), safe=""),
    "every_byte_percent_lower": lambda auth: "".join(f"%{b:02x}" for b in auth.encode()),
    "every_byte_percent_upper": lambda auth: "".join(f"%{b:02X}" for b in auth.encode()),
    "double_percent": lambda auth: "".join(f"%25{b:02X}" for b in _token(auth).encode()),
    "upper_case": lambda auth: auth.upper(),
    "swapped_case": lambda auth: _token(auth).swapcase(),
    "hex_lower": lambda auth: _token(auth).encode().hex(),
    "hex_upper": lambda auth: _token(auth).encode().hex().upper(),
    "hex_spaced": lambda auth: " ".join(f"{b:02x}" for b in _token(auth).encode()),
    "base64_token": lambda auth: _b64(_token(auth)),
    "base64_header": lambda auth: _b64(auth),
    "base64_basic_auth": lambda auth: _b64("x:" + _token(auth)),
    "base64_in_a_longer_text": lambda auth: _b64("Authorization: " + auth + "\r\n"),
    "base64_urlsafe": lambda auth: base64.urlsafe_b64encode(auth.encode()).decode(),
    "base64_wrapped": lambda auth: _wrapped(_b64(auth), 16, "\n"),
    "split_by_newlines": lambda auth: _wrapped(_token(auth), 7, "\n"),
    "split_by_crlf_and_tabs": lambda auth: _wrapped(_token(auth), 5, "\r\n\t"),
    "split_by_spaces": lambda auth: " ".join(_token(auth)),
    "split_by_escaped_newlines": lambda auth: _wrapped(_token(auth), 9, "\\n"),
}


def assert_no_token(text: str) -> None:
    """Neither the token nor any of its echoed forms, nor a 12-character piece of it in any
    case once whitespace is gone, is in `text`."""
    auth = f"Splunk {TOKEN}"
    for name, echo in ECHOES.items():
        assert echo(auth) not in text, name
    squeezed = re.sub(r"\s|\\+[nrt]", "", text).lower()
    for i in range(len(TOKEN) - 11):
        assert TOKEN[i : i + 12].lower() not in squeezed
    assert _b64(TOKEN)[:40] not in text.replace("\n", "")


@pytest.mark.parametrize("form", sorted(ECHOES))
def test_an_echoed_token_is_scrubbed_from_reasons_logs_and_the_outbox(
    hec: HecServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    hec.faults.echo = ECHOES[form]
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        # 503 for ever: the retry budget is spent, the reason says what HEC answered.
        hec.faults.busy_first = 10**6
        outbox = MemoryOutbox()
        outbox.stage(pending(2))
        down = Deliverer(outbox, sink_for(hec, fake_time, retry_budget_seconds=1))
        summary = down.deliver_pending()
        texts += [str(summary), down.circuit_open, *(a.last_error for a in outbox.pending())]
        hec.faults.busy_first = 0
        # A bad event: dead-lettered with HEC's text.
        alerts = pending(3)
        hec.faults.bad_alert_ids = {alerts[1].alert_id}
        report = sink_for(hec, fake_time).deliver(alerts)
        assert report.dead_lettered
        texts.append(str(report))
        # A token HEC refuses (403): a configuration error, logged once.
        hec.token = "the-token-was-rotated"
        refused = sink_for(hec, fake_time).deliver(pending(1))
        assert refused.config_error
        texts.append(str(refused))
    assert "retry budget" in texts[1] and "Invalid token" in refused.config_error
    everything = "\n".join([*texts, caplog.text])
    assert everything.count("<token>") >= 3  # echoed, and scrubbed, every time
    assert_no_token(everything)


@pytest.mark.parametrize(
    "form", [f for f in sorted(ECHOES) if "split" not in f and "wrapped" not in f]
)
def test_an_echo_in_the_http_reason_phrase_is_scrubbed(
    hec: HecServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    hec.faults.echo, hec.faults.echo_in_reason = ECHOES[form], True
    hec.faults.status_first, hec.faults.status = 1, 418  # an answer HEC never gives: config
    with caplog.at_level(logging.DEBUG):
        report = sink_for(hec, fake_time).deliver(pending(1))
    assert "HTTP 418 (Unavailable for " in report.config_error
    assert "<token>" in report.config_error
    assert_no_token("\n".join([str(report), caplog.text]))


def test_the_scrubber_leaves_other_text_alone() -> None:
    scrub = TokenScrubber(TOKEN)
    text = "HTTP 503 code 9 (Server is busy); retry budget of 30s spent: 0f4c3d2b 5e1f0c2a"
    assert scrub(text) == text
    assert scrub(f"a{TOKEN}b{TOKEN.upper()}c") == "a<token>b<token>c"
    assert TokenScrubber("")("anything") == "anything"


def test_the_token_is_in_no_exception_text(hec: HecServer) -> None:
    """Settings errors quote the bad value; when the token was pasted there, not the token."""
    errors: list[str] = []
    cases: list[Callable[[str], object]] = [
        lambda pasted: HecSettings(f"ftp://{pasted}", TOKEN),
        lambda pasted: HecSettings.from_env(
            {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_HEC_GZIP": pasted}
        ),
        lambda pasted: HecSettings.from_env(
            {"SPLUNK_HEC_URL": hec.url, "SPLUNK_HEC_READ_TIMEOUT": pasted}, token=TOKEN
        ),
    ]
    for echo in ECHOES.values():
        for case in cases:
            with pytest.raises(HecSettingsError) as err:
                case(echo(f"Splunk {TOKEN}"))
            errors.append(str(err.value))
            # Not hidden in the context either (a traceback prints it).
            assert err.value.__context__ is None and err.value.__cause__ is None
    # A token HTTP cannot carry is refused without being quoted (the HTTP library would).
    for bad in (f"Splunk {TOKEN}", f"{TOKEN[:10]}\n{TOKEN[10:]}", TOKEN + "é"):
        with pytest.raises(HecSettingsError, match="whitespace, control or non-ASCII") as err:
            HecSettings(hec.url, bad)
        errors.append(str(err.value))
    assert [e for e in errors[:-3] if "<token>" not in e] == []
    assert_no_token("\n".join(errors))


# -- indexer acknowledgement ---------------------------------------------------------------------


def test_with_ack_alerts_are_delivered_once_the_indexer_acknowledges(
    hec: HecServer, fake_time: FakeTime
) -> None:
    hec.faults.ack, hec.faults.ack_false_polls = True, 2
    alerts = pending(5)
    sink = sink_for(
        hec, fake_time, use_ack=True, gzip=True, max_batch_events=2, ack_poll_seconds=0.5
    )
    report = sink.deliver(alerts)
    assert len(report.delivered) == 5
    assert report.counters["ack_polls"] == 3  # false, false, true: all three ackIds per poll
    assert fake_time.sleeps == [0.5, 0.5]
    channels = {r.channel for r in hec.event_requests()}
    assert channels == {sink.channel} and len(sink.channel) == 36
    acks = [r for r in hec.requests if r.path.endswith("/ack")]
    assert len(acks) == 3
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_without_an_acknowledgement_in_time_alerts_stay_pending(
    hec: HecServer, fake_time: FakeTime
) -> None:
    hec.faults.ack, hec.faults.ack_false_polls = True, 1_000
    alerts = pending(2)
    report = sink_for(hec, fake_time, use_ack=True, ack_timeout_seconds=3).deliver(alerts)
    assert not report.delivered
    assert "no indexer acknowledgement within 3s" in report.pending[alerts[0].alert_id]
    assert sum(fake_time.sleeps) <= 3


def test_ack_required_by_the_token_but_not_configured_is_a_configuration_error(
    hec: HecServer, fake_time: FakeTime
) -> None:
    hec.faults.ack = True
    report = sink_for(hec, fake_time).deliver(pending(2))
    assert "code 10 (Data channel is missing)" in report.config_error
    assert "set use_ack" in report.config_error


def test_use_ack_against_a_token_without_ack_counts_the_events_delivered(
    hec: HecServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    report = sink_for(hec, fake_time, use_ack=True).deliver(pending(2))
    assert len(report.delivered) == 2
    assert "returned no ackId" in caplog.text


# -- TLS -------------------------------------------------------------------------------------------


def test_tls_is_verified_by_default_and_a_ca_bundle_makes_it_trusted(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    context, cert = self_signed_tls(tmp_path)
    with HecServer(TOKEN, tls=context) as server:
        assert server.url.startswith("https://")
        alerts = pending(2)
        refused = sink_for(server, fake_time).deliver(alerts)
        assert "TLS verification failed" in refused.config_error  # not retried: configuration
        assert fake_time.sleeps == [] and server.events == []
        trusted = sink_for(server, fake_time, ca_bundle=str(cert)).deliver(alerts)
        assert len(trusted.delivered) == 2
        assert_each_once(server, [a.alert_id for a in alerts])


# -- settings ---------------------------------------------------------------------------------------


def test_settings_accept_the_collector_url_in_its_usual_forms() -> None:
    for url in (
        "https://hec.example.com:8088",
        "https://hec.example.com:8088/",
        "https://hec.example.com:8088/services/collector",
        "https://hec.example.com:8088/services/collector/event",
    ):
        assert HecSettings(url, TOKEN).url == "https://hec.example.com:8088"


def test_settings_from_env() -> None:
    env = {
        "SPLUNK_HEC_URL": "https://hec.example.com:8088",
        "SPLUNK_HEC_TOKEN": TOKEN,
        "SPLUNK_HEC_INDEX": "security",
        "SPLUNK_HEC_GZIP": "true",
        "SPLUNK_HEC_MAX_BATCH_EVENTS": "100",
        "SPLUNK_HEC_CA_BUNDLE": "/etc/ssl/splunk.pem",
    }
    s = HecSettings.from_env(env)
    assert (s.index, s.gzip, s.max_batch_events, s.ca_bundle) == (
        "security",
        True,
        100,
        "/etc/ssl/splunk.pem",
    )
    assert (s.sourcetype, s.verify, s.use_ack, s.max_batch_bytes) == (
        "cloudtrail_anomaly:alert",
        True,
        False,
        900_000,
    )
    assert HecSettings.from_env({"SPLUNK_HEC_URL": s.url}, token="from-secrets").token == (
        "from-secrets"
    )
    with pytest.raises(HecSettingsError, match="SPLUNK_HEC_TOKEN is not set"):
        HecSettings.from_env({"SPLUNK_HEC_URL": s.url})
    with pytest.raises(HecSettingsError, match="SPLUNK_HEC_URL is not set"):
        HecSettings.from_env({"SPLUNK_HEC_TOKEN": TOKEN})


# -- through the outbox: a crash between claim and delivery loses nothing -------------------------


def test_alerts_staged_before_a_crash_reach_splunk_once(
    tmp_path: Path, hec: HecServer, fake_time: FakeTime
) -> None:
    state = tmp_path / "state.sqlite"
    alerts = pending(5)
    SqliteBaseline(state).stage(alerts)  # staged with their claims; then the process died
    hec.faults.busy_first = 2
    reopened = SqliteBaseline(state)
    sink = sink_for(hec, fake_time)
    done = Deliverer(reopened, sink).deliver_pending()
    assert (done.delivered, done.still_pending) == (5, 0)
    assert Deliverer(SqliteBaseline(state), sink).deliver_pending().delivered == 0
    assert len(hec.event_requests()) == 3  # two busy answers, one success, nothing after
    assert_each_once(hec, [a.alert_id for a in alerts])


def test_an_alert_detected_before_a_crash_reaches_splunk_once(
    tmp_path: Path, hec: HecServer, fake_time: FakeTime
) -> None:
    state = tmp_path / "state.sqlite"
    record = {
        "eventTime": "2024-06-01T00:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "eventID": "e-1",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
    }
    policy = AlertPolicy(PolicySettings(learning_days=0))
    db = SqliteBaseline(state)
    # Detection claims the tuple and stages its alert in one transaction; the process dies
    # before any delivery.
    (alert,) = Detector(db, policy).process([record], "obj-1").alerts
    db.close()
    reopened = SqliteBaseline(state)
    assert Detector(reopened, policy).process([record], "obj-1").alerts == []  # claimed: no twin
    hec.faults.busy_first = 1
    done = Deliverer(reopened, sink_for(hec, fake_time)).deliver_pending()
    assert (done.delivered, done.still_pending) == (1, 0)
    again = Deliverer(SqliteBaseline(state), sink_for(hec, fake_time)).deliver_pending()
    assert again.delivered == 0
    assert_each_once(hec, [alert.alert_id])
    assert hec.events[0]["event"] == alert.to_dict()
    assert len(hec.event_requests()) == 2  # one busy answer, one success


def test_as_pending_accepts_alert_dicts(hec: HecServer, fake_time: FakeTime) -> None:
    alert = make_alert(3)
    (entry,) = as_pending([alert.to_dict()])
    assert (entry.alert_id, entry.first_event_time, entry.severity) == (
        alert.alert_id,
        alert.first_event_time,
        "high",
    )
    sink_for(hec, fake_time).deliver([entry])
    assert hec.events[0]["event"] == alert.to_dict()
