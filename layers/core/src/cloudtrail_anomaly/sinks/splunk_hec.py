"""Splunk HTTP Event Collector sink: alerts as HEC events, nothing lost and nothing sent twice.

Each alert becomes one event `{time, host, source, sourcetype, index, event}` (`time` = the
alert's first event time, epoch seconds; `event` = the alert's JSON verbatim). Events go several
to a request, as concatenated JSON objects to `/services/collector/event`, capped by bytes and by
count; an alert too big for a request on its own is dead-lettered, never truncated.

What each HEC answer does (README, "Delivering to Splunk"):

- 200: delivered (with indexer acknowledgement on: once `/services/collector/ack` says so).
- 503 (code 9, busy), other 5xx, 429, connection errors and timeouts: retried with exponential
  backoff and full jitter (honouring `Retry-After`) while the call's retry budget lasts; then
  the rest stays pending for the next call.
- 400 with code 6, 12 or 13 (a bad event) and `invalid-event-number` n: HEC indexed the events
  before n and dropped n and everything after it, so events before n are delivered (resending
  them would duplicate them), event n is dead-lettered with HEC's reason, the rest is re-sent.
- 413: the request is split in two and each half sent; a lone event is dead-lettered.
- 401/403 (codes 1-4), 400 code 7 (index), 10/11/14 (channel, ack), 404 and any other answer:
  a configuration error. One request, then stop: everything stays pending, logged once per sink.

The token is sent in the Authorization header only; it is in no repr, log line, reason or
exception message this module makes. A collector (or a proxy in front of it) may echo it back in
its answer, so everything taken from an answer is scrubbed (`TokenScrubber`): the token in any
letter case, URL-encoded (any or every byte, either hex case), as hex, in base64 (standard or
URL-safe, at any offset: the token alone, `Splunk <token>`, Basic `user:<token>`), and with
whitespace or line breaks between its characters.
"""

from __future__ import annotations

import base64
import gzip as gzip_module
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import requests

from ..ports import DeliveryReport, PendingAlert
from . import parse_flag

log = logging.getLogger(__name__)

# vendor:product, so no search written for raw CloudTrail (`aws:cloudtrail*`) matches alerts; the
# add-on (splunk/TA-cloudtrail-anomaly) is keyed on it. The old `aws:cloudtrail:anomaly` is still
# accepted (SPLUNK_HEC_SOURCETYPE); the add-on reads both.
DEFAULT_SOURCETYPE = "cloudtrail_anomaly:alert"
LEGACY_SOURCETYPE = "aws:cloudtrail:anomaly"
DEFAULT_SOURCE = "cloudtrail-anomaly"
EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"

BAD_EVENT_CODES = frozenset({6, 12, 13})  # invalid data format, event field required / blank
HEC_CODE_TEXT = {
    1: "token disabled",
    2: "token is required",
    3: "invalid authorization",
    4: "invalid token",
    5: "no data",
    6: "invalid data format",
    7: "incorrect index",
    8: "internal server error",
    9: "server is busy",
    10: "data channel is missing",
    11: "invalid data channel",
    12: "event field is required",
    13: "event field cannot be blank",
    14: "ACK is disabled",
}
_CONFIG_HINT = {
    1: "enable the HEC token",
    2: "set the HEC token",
    3: "check the HEC token",
    4: "check the HEC token",
    7: "check the index: it must exist and be allowed for the token",
    10: "indexer acknowledgement is on for the token: set use_ack",
    11: "indexer acknowledgement channel refused",
    14: "indexer acknowledgement is off for the token: unset use_ack",
}


TLS_FAILED = -1  # _Answer.status when the TLS handshake failed


class HecSettingsError(ValueError):
    """A bad HEC setting; the message names it (and never contains the token)."""


# Between two characters of an echoed secret: whitespace, line breaks, or their escapes (once
# or twice escaped: a repr doubles the backslash).
_GAP = r"(?:\s|\\+[nrt])*"
_MIN_ENCODED = 8  # shorter encoded forms would match ordinary text


class TokenScrubber:
    """Replaces a secret in text with `<token>`, in the forms a hostile or careless server might
    echo it: any letter case; any or every byte percent-encoded (`quote`, `quote_plus`, double
    encoding, either hex case); hex; base64 and URL-safe base64 at each of the three byte
    alignments, so the token is found inside the encoding of a longer string (`Splunk <token>`,
    Basic `user:<token>`); each form with whitespace, line breaks or `\\n` escapes between
    its characters (a wrapped or split echo)."""

    def __init__(self, secret: str, replacement: str = "<token>") -> None:
        self.replacement = replacement
        self._pattern = re.compile("|".join(_forms(secret))) if secret else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda _: self.replacement, text)


def _spread(parts: Sequence[str]) -> str:
    return _GAP.join(parts)


def _forms(secret: str) -> list[str]:
    # Plain or percent-encoded, character by character (one character may be several bytes).
    def char(c: str) -> str:
        encoded = "".join(f"%(?:25)?{b:02x}" for b in c.encode())
        plus = "|\\+" if c == " " else ""
        return f"(?:{re.escape(c)}|{encoded}{plus})"

    forms = [f"(?i:{_spread([char(c) for c in secret])})"]
    raw = secret.encode()
    if len(raw) * 2 >= _MIN_ENCODED:
        forms.append(f"(?i:{_spread([re.escape(h) for h in raw.hex()])})")
    for k in range(3):
        # In any base64 text that encodes the secret after k bytes (mod 3) of something else,
        # these characters depend on the secret's bytes only: look for them.
        encoded = base64.b64encode(b"\0" * k + raw).decode()
        core = encoded[-(-8 * k // 6) : (8 * (k + len(raw))) // 6]
        if len(core) < _MIN_ENCODED:
            continue
        variants = {core, core.replace("+", "-").replace("/", "_")}
        forms += [_spread([re.escape(c) for c in v]) for v in sorted(variants)]
    return forms


@dataclass(frozen=True, slots=True)
class HecSettings:
    """Where and how to send. `url` is the collector's base URL (`https://host:8088`); a URL
    ending in `/services/collector` or `/services/collector/event` is accepted too."""

    url: str
    token: str = field(repr=False)
    sourcetype: str = DEFAULT_SOURCETYPE
    source: str = DEFAULT_SOURCE
    host: str = ""  # "" = left to the HEC input's default
    index: str = ""  # "" = the token's default index
    gzip: bool = False
    max_batch_bytes: int = 900_000  # below Splunk Cloud's 1 MB per request
    max_batch_events: int = 500
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_budget_seconds: float = 30.0  # total backoff per deliver() call; then pending
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 10.0
    verify: bool = True
    ca_bundle: str = ""  # a PEM file to verify the collector's certificate with
    use_ack: bool = False  # indexer acknowledgement (Splunk Enterprise)
    ack_timeout_seconds: float = 60.0
    ack_poll_seconds: float = 1.0
    channel: str = ""  # the ack channel (a GUID); "" = a new one per sink

    def __post_init__(self) -> None:
        try:
            self._check()
            return
        except HecSettingsError as exc:
            message = str(exc)
        # A value quoted in the message may hold the token (pasted into the wrong setting).
        # Raised out here, so the unscrubbed error is not kept as its context either.
        raise HecSettingsError(TokenScrubber(self.token.strip())(message))

    def _check(self) -> None:
        url = self.url.strip().rstrip("/")
        for suffix in (EVENT_PATH, "/services/collector"):
            if url.endswith(suffix):
                url = url[: -len(suffix)]
        if not url.startswith(("https://", "http://")):
            raise HecSettingsError(f"url {self.url!r}: must start with https:// (or http://)")
        object.__setattr__(self, "url", url)
        if not self.token.strip():
            raise HecSettingsError("token is empty")
        if not all("!" <= c <= "~" for c in self.token):
            # It could not go in an HTTP header, and the HTTP library's error would quote it.
            raise HecSettingsError(
                "the token has whitespace, control or non-ASCII characters: give the token "
                "alone (without 'Splunk ')"
            )
        if self.max_batch_bytes < 1_000:
            raise HecSettingsError(f"max_batch_bytes={self.max_batch_bytes}: at least 1000")
        if self.max_batch_events < 1:
            raise HecSettingsError(f"max_batch_events={self.max_batch_events}: at least 1")
        for name in ("connect_timeout", "read_timeout", "ack_poll_seconds"):
            if getattr(self, name) <= 0:
                raise HecSettingsError(f"{name}={getattr(self, name)}: must be positive")
        for name in ("retry_budget_seconds", "backoff_base_seconds", "ack_timeout_seconds"):
            if getattr(self, name) < 0:
                raise HecSettingsError(f"{name}={getattr(self, name)}: must not be negative")

    @classmethod
    def from_env(cls, env: Mapping[str, str], token: str | None = None) -> HecSettings:
        """Settings from `SPLUNK_HEC_*` variables (URL, TOKEN unless `token` is given, INDEX,
        SOURCETYPE, SOURCE, HOST, GZIP, VERIFY, CA_BUNDLE, USE_ACK, MAX_BATCH_BYTES,
        MAX_BATCH_EVENTS, CONNECT_TIMEOUT, READ_TIMEOUT, RETRY_BUDGET_SECONDS). An error quotes
        the bad value, scrubbed of the token (which may have been pasted into the wrong one)."""
        secret = (token if token is not None else env.get("SPLUNK_HEC_TOKEN", "")).strip()
        try:
            return cls._from_env(env, token)
        except HecSettingsError as exc:
            message = str(exc)
        raise HecSettingsError(TokenScrubber(secret)(message))  # out here: no context kept

    @classmethod
    def _from_env(cls, env: Mapping[str, str], token: str | None) -> HecSettings:

        def text(name: str, default: str = "") -> str:
            return env.get(f"SPLUNK_HEC_{name}", "").strip() or default

        def flag(name: str, default: bool) -> bool:
            raw = text(name)  # quoted as given: the scrubber knows the token's cases
            if not raw:
                return default
            value = parse_flag(raw)
            if value is None:
                raise HecSettingsError(f"SPLUNK_HEC_{name}={raw!r}: expected true or false")
            return value

        def number(name: str, default: float) -> float:
            raw = text(name)
            try:
                return float(raw) if raw else default
            except ValueError:
                raise HecSettingsError(f"SPLUNK_HEC_{name}={raw!r} is not a number") from None

        url = text("URL")
        if not url:
            raise HecSettingsError("SPLUNK_HEC_URL is not set")
        token = token if token is not None else env.get("SPLUNK_HEC_TOKEN", "")
        if not token.strip():
            raise HecSettingsError("SPLUNK_HEC_TOKEN is not set")
        return cls(
            url=url,
            token=token.strip(),
            sourcetype=text("SOURCETYPE", DEFAULT_SOURCETYPE),
            source=text("SOURCE", DEFAULT_SOURCE),
            host=text("HOST"),
            index=text("INDEX"),
            gzip=flag("GZIP", False),
            verify=flag("VERIFY", True),
            ca_bundle=text("CA_BUNDLE"),
            use_ack=flag("USE_ACK", False),
            max_batch_bytes=int(number("MAX_BATCH_BYTES", 900_000)),
            max_batch_events=int(number("MAX_BATCH_EVENTS", 500)),
            connect_timeout=number("CONNECT_TIMEOUT", 5.0),
            read_timeout=number("READ_TIMEOUT", 30.0),
            retry_budget_seconds=number("RETRY_BUDGET_SECONDS", 30.0),
        )


@dataclass(slots=True)
class _Event:
    alert_id: str
    data: bytes  # the event's JSON envelope


@dataclass(frozen=True, slots=True)
class _Answer:
    """One HEC response (status 0: none, a connection error or timeout; TLS_FAILED)."""

    status: int
    code: int | None = None
    text: str = ""
    invalid_event: int | None = None
    ack_id: int | None = None
    retry_after: float | None = None
    body: Mapping[str, Any] = field(default_factory=dict)


class _OutOfBudget(Exception):
    pass


class SplunkHecSink:
    """An `AlertSink` posting to a Splunk HTTP Event Collector (see the module docstring).

    `session` is built once here unless given (connections are reused across calls); `sleep`,
    `clock` (monotonic) and `jitter` (uniform in [0, 1)) are there so tests need not wait.
    """

    name = "splunk_hec"

    def __init__(
        self,
        settings: HecSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.jitter = jitter
        self.channel = settings.channel or str(uuid.uuid4())
        self._headers = {
            "Authorization": f"Splunk {settings.token}",
            "Content-Type": "application/json",
        }
        if settings.use_ack:
            self._headers["X-Splunk-Request-Channel"] = self.channel
        self._gzip_headers = {**self._headers, "Content-Encoding": "gzip"}
        self._verify: bool | str = settings.ca_bundle or settings.verify
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._logged: set[str] = set()
        self.scrub = TokenScrubber(settings.token)
        head: dict[str, str] = {"sourcetype": settings.sourcetype, "source": settings.source}
        if settings.host:
            head["host"] = settings.host
        if settings.index:
            head["index"] = settings.index
        self._head = head
        if not settings.verify and not settings.ca_bundle:
            log.warning("Splunk HEC sink: TLS certificate verification is off for %s", self.url)

    @property
    def url(self) -> str:
        return self.settings.url

    def __repr__(self) -> str:
        return f"SplunkHecSink(url={self.url!r}, index={self.settings.index!r})"

    def envelope(self, alert: PendingAlert) -> bytes:
        return orjson.dumps(
            {"time": alert.first_event_time, **self._head, "event": orjson.Fragment(alert.document)}
        )

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        events: list[_Event] = []
        for alert in alerts:
            data = self.envelope(alert)
            if len(data) > self.settings.max_batch_bytes:
                report.dead_lettered[alert.alert_id] = (
                    f"event of {len(data):,} bytes exceeds the HEC request cap of "
                    f"{self.settings.max_batch_bytes:,} bytes"
                )
            else:
                events.append(_Event(alert.alert_id, data))
        run = _Run(self, report, self.clock() + self.settings.retry_budget_seconds)
        queue = self.batches(events)
        while queue:
            batch = queue.pop(0)
            if run.stopped:
                run.keep_pending(batch, run.stopped)
                continue
            queue[:0] = run.send(batch)  # a split (413, unknown bad event) goes first
        run.await_acks()
        report.counters["dead_lettered"] += len(report.dead_lettered)
        return report

    def batches(self, events: Sequence[_Event]) -> list[list[_Event]]:
        """Events in order, cut into requests of at most max_batch_bytes and max_batch_events."""
        out: list[list[_Event]] = []
        batch: list[_Event] = []
        size = 0
        for e in events:
            if batch and (
                size + len(e.data) > self.settings.max_batch_bytes
                or len(batch) >= self.settings.max_batch_events
            ):
                out.append(batch)
                batch, size = [], 0
            batch.append(e)
            size += len(e.data)
        if batch:
            out.append(batch)
        return out

    def post(self, path: str, body: bytes, *, gzipped: bool = False) -> _Answer:
        try:
            response = self.session.post(
                self.url + path,
                data=body,
                headers=self._gzip_headers if gzipped else self._headers,
                timeout=self._timeout,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on retry: configuration.
            # Scrubbed before it is cut short: a cut could leave part of an echoed token.
            return _Answer(TLS_FAILED, text=self.scrub(f"TLS verification failed: {exc}")[:300])
        except requests.Timeout:
            return _Answer(0, text="timed out")
        except requests.RequestException as exc:
            return _Answer(0, text=f"connection failed ({type(exc).__name__})")
        answer = _answer(response)
        return replace(answer, text=self.scrub(answer.text))

    def log_once(self, level: int, message: str) -> None:
        message = self.scrub(message)
        if message not in self._logged:
            self._logged.add(message)
            log.log(level, "%s", message)


class _Run:
    """One deliver() call: its report, retry budget, outstanding acks and whether it stopped."""

    def __init__(self, sink: SplunkHecSink, report: DeliveryReport, deadline: float) -> None:
        self.sink = sink
        self.report = report
        self.deadline = deadline
        self.stopped = ""  # why the rest of this call is not sent
        self.acks: dict[int, list[_Event]] = {}

    def send(self, batch: list[_Event]) -> list[list[_Event]]:
        """Send one request's events until each is delivered, dead-lettered or pending;
        return sub-batches still to send (split after a 413)."""
        sink, counters = self.sink, self.report.counters
        attempt = 0
        while batch:
            body = b"".join(e.data for e in batch)
            if sink.settings.gzip:
                body = gzip_module.compress(body, compresslevel=6, mtime=0)
            if attempt:
                counters["retries"] += 1
            counters["requests"] += 1
            counters["bytes_sent"] += len(body)
            answer = sink.post(EVENT_PATH, body, gzipped=sink.settings.gzip)
            if 200 <= answer.status < 300:
                self.accepted(batch, answer)
                return []
            if answer.status == 0 or answer.status == 429 or answer.status >= 500:
                counters[f"hec_{answer.status or 'unreachable'}"] += 1
                attempt += 1
                try:
                    self.back_off(attempt, answer)
                except _OutOfBudget:
                    self.stopped = (
                        f"HEC unavailable ({describe(answer)}); retry budget of "
                        f"{sink.settings.retry_budget_seconds:g}s spent"
                    )
                    sink.log_once(logging.WARNING, f"Splunk HEC: {self.stopped}")
                    self.keep_pending(batch, self.stopped)
                    return []
                continue
            if answer.status == 400 and answer.code in BAD_EVENT_CODES:
                counters["hec_bad_event"] += 1
                n = answer.invalid_event
                if n is None or not 0 <= n < len(batch):
                    if len(batch) == 1:
                        self.dead_letter(batch[0], answer)
                        return []
                    # HEC did not say which event: send each alone (the ones it indexed before
                    # the bad one may arrive twice; consumers dedup on alert_id).
                    return [[e] for e in batch]
                self.delivered(batch[:n])
                self.dead_letter(batch[n], answer)
                batch = batch[n + 1 :]  # never indexed: resend
                attempt = 0
                continue
            if answer.status == 413:
                counters["hec_413"] += 1
                if len(batch) == 1:
                    self.dead_letter(batch[0], answer)
                    return []
                half = len(batch) // 2
                return [batch[:half], batch[half:]]
            self.configuration_error(batch, answer)
            return []
        return []

    def accepted(self, batch: list[_Event], answer: _Answer) -> None:
        if self.sink.settings.use_ack:
            if answer.ack_id is not None:
                self.acks[answer.ack_id] = batch
                return
            self.sink.log_once(
                logging.WARNING,
                "Splunk HEC: use_ack is set but the collector returned no ackId "
                "(indexer acknowledgement is off for this token); events count as delivered",
            )
        self.delivered(batch)

    def delivered(self, events: Sequence[_Event]) -> None:
        self.report.delivered.extend(e.alert_id for e in events)
        self.report.counters["events_sent"] += len(events)

    def dead_letter(self, event: _Event, answer: _Answer) -> None:
        self.report.dead_lettered[event.alert_id] = f"rejected by HEC: {describe(answer)}"

    def keep_pending(self, events: Sequence[_Event], reason: str) -> None:
        for e in events:
            self.report.pending[e.alert_id] = reason

    def configuration_error(self, batch: list[_Event], answer: _Answer) -> None:
        sink = self.sink
        if answer.invalid_event and answer.status == 400 and answer.invalid_event < len(batch):
            # As with a bad event, HEC indexed what came before the one it refused.
            self.delivered(batch[: answer.invalid_event])
            batch = batch[answer.invalid_event :]
        hint = _CONFIG_HINT.get(answer.code or 0, "")
        if answer.status == 404:
            hint = f"no HEC event endpoint at {sink.url}{EVENT_PATH}: check the url"
        reason = f"HEC configuration error: {describe(answer)}" + (f"; {hint}" if hint else "")
        self.report.config_error = reason
        self.report.counters["hec_config_error"] += 1
        self.stopped = reason
        self.keep_pending(batch, reason)
        sink.log_once(logging.ERROR, f"Splunk HEC at {sink.url}: {reason}; alerts stay pending")

    def back_off(self, attempt: int, answer: _Answer) -> None:
        s = self.sink.settings
        ceiling = min(s.backoff_max_seconds, s.backoff_base_seconds * 2 ** (attempt - 1))
        delay = self.sink.jitter() * ceiling  # full jitter
        if answer.retry_after is not None:
            delay = max(delay, answer.retry_after)
        if self.sink.clock() + delay > self.deadline:
            raise _OutOfBudget
        self.sink.sleep(delay)

    def await_acks(self) -> None:
        """Poll `/services/collector/ack` until every request is acknowledged or time is up."""
        if not self.acks:
            return
        sink = self.sink
        deadline = sink.clock() + sink.settings.ack_timeout_seconds
        while self.acks:
            self.report.counters["ack_polls"] += 1
            answer_acks = self.poll(sorted(self.acks))
            for ack_id, ok in answer_acks.items():
                if ok and ack_id in self.acks:
                    self.delivered(self.acks.pop(ack_id))
            if not self.acks:
                return
            if sink.clock() + sink.settings.ack_poll_seconds > deadline:
                break
            sink.sleep(sink.settings.ack_poll_seconds)
        reason = (
            f"sent, but no indexer acknowledgement within {sink.settings.ack_timeout_seconds:g}s "
            "(a resend may duplicate it; dedup on alert_id)"
        )
        for events in self.acks.values():
            self.keep_pending(events, reason)
        self.report.counters["ack_timeouts"] += len(self.acks)

    def poll(self, ack_ids: list[int]) -> dict[int, bool]:
        answer = self.sink.post(ACK_PATH, orjson.dumps({"acks": ack_ids}))
        acks = answer.body.get("acks") if answer.status == 200 else None
        if not isinstance(acks, dict):
            return {}  # no answer this round: poll again
        return {int(k): v is True for k, v in acks.items() if str(k).isdigit()}


def describe(answer: _Answer) -> str:
    if answer.status <= 0:
        return answer.text
    out = f"HTTP {answer.status}"
    if answer.code is not None:
        out += f" code {answer.code}"
    text = answer.text or HEC_CODE_TEXT.get(answer.code or -1, "")
    if text:
        out += f" ({text[:200]})"
    if answer.invalid_event is not None:
        out += f", invalid-event-number {answer.invalid_event}"
    return out


def _answer(response: requests.Response) -> _Answer:
    raw_retry = response.headers.get("Retry-After", "").strip()
    try:
        doc = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}

    def as_int(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return _Answer(
        response.status_code,
        code=as_int(doc.get("code")),
        text=str(doc.get("text") or response.reason or ""),
        invalid_event=as_int(doc.get("invalid-event-number")),
        ack_id=as_int(doc.get("ackId")),
        retry_after=float(raw_retry) if raw_retry.isdigit() else None,
        body=doc,
    )
