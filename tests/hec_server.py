"""A local Splunk HTTP Event Collector for tests and scripts/hec_faults.py.

Real HTTP/1.1 (keep-alive) on 127.0.0.1, an ephemeral port, a background thread; standard
library only. It speaks the part of HEC the sink uses: `POST /services/collector/event` with
`Authorization: Splunk <token>`, a body of concatenated JSON event objects (gzip when
`Content-Encoding: gzip`), HEC's JSON answers `{"text", "code", "invalid-event-number", "ackId"}`
and, when indexer acknowledgement is on, `POST /services/collector/ack`.

Like HEC, a batch is taken in order and the first bad event stops it: the events before it are
indexed (kept in `events`), it and the ones after are not. Faults are scripted in `Faults`;
every request is recorded in `requests`.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"


@dataclass
class Faults:
    """What goes wrong, counted in event requests from the server's start."""

    busy_first: int = 0  # 503 code 9 "Server is busy" for the first N requests
    status_first: int = 0  # or any other answer for the first N requests:
    status: int = 503  # ... this HTTP status
    status_body: dict[str, Any] = field(
        default_factory=lambda: {"text": "Server is busy", "code": 9}
    )
    retry_after: int | None = None  # a Retry-After header on those answers
    stall_first: int = 0  # the first N requests wait stall_seconds, then are dropped (not indexed)
    lose_response_first: int = 0  # the first N requests are indexed, then wait stall_seconds
    stall_seconds: float = 0.0
    bad_alert_ids: set[str] = field(default_factory=set)  # → 400 code 6 at that event
    allowed_indexes: set[str] | None = None  # an event's index outside → 400 code 7
    max_body_bytes: int | None = None  # a larger (decompressed) body → 413
    echo_authorization: bool = False  # put the Authorization header in error texts (a bad server)
    # A hostile collector: every error answer (status >= 300) carries echo(Authorization header)
    # in its text, or with echo_in_reason in its HTTP reason phrase (and a body that is not JSON).
    echo: Callable[[str], str] | None = None
    echo_in_reason: bool = False
    ack: bool = False  # indexer acknowledgement on for the token
    ack_false_polls: int = 0  # each ackId is reported false this many times before true


@dataclass(frozen=True)
class Request:
    path: str
    status: int
    events: int  # events in the body (parsed up to the first bad one)
    indexed: int  # of which indexed
    body_bytes: int  # as sent (compressed when gzip)
    raw_bytes: int  # decompressed
    gzip: bool
    client_port: int
    channel: str


class HecServer:
    def __init__(
        self, token: str, faults: Faults | None = None, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.token = token
        self.faults = faults or Faults()
        self.events: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._event_requests = 0
        self._next_ack = 0
        self._acks: dict[int, int] = {}  # ackId → false answers still to give
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.hec = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def start(self) -> HecServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only if it runs
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> HecServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what arrived ----------------------------------------------------------------------
    def alert_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(e["event"]["alert_id"] for e in self.events)

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.alert_counts().values() if n > 1)

    def event_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == EVENT_PATH]

    # -- HEC ---------------------------------------------------------------------------------
    def answer_events(
        self, handler: _Handler, body: bytes, channel: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        f = self.faults
        with self.lock:
            n = self._event_requests
            self._event_requests += 1
        gzipped = handler.headers.get("Content-Encoding", "").lower() == "gzip"
        raw = body
        record = {"body_bytes": len(body), "gzip": gzipped, "channel": channel}
        if gzipped:
            try:
                raw = gzip.decompress(body)
            except (OSError, EOFError):
                return self._done(handler, record, raw, 400, _err("Invalid data format", 6, 0))
        headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
        if n < f.busy_first:
            return self._done(handler, record, raw, 503, _err("Server is busy", 9), headers)
        if n < f.status_first:
            return self._done(handler, record, raw, f.status, dict(f.status_body), headers)
        if n < f.stall_first:
            time.sleep(f.stall_seconds)  # the client has given up by now; nothing is indexed
            return self._done(handler, record, raw, 503, _err("Server is busy", 9))
        if f.ack and not channel:
            return self._done(handler, record, raw, 400, _err("Data channel is missing", 10))
        if f.max_body_bytes is not None and len(raw) > f.max_body_bytes:
            text = f"Content-Length of {len(raw)} too large (maximum is {f.max_body_bytes})"
            return self._done(handler, record, raw, 413, {"text": text, "code": 27})
        if not raw.strip():
            return self._done(handler, record, raw, 400, _err("No data", 5))
        events, error = self._parse(raw)
        with self.lock:
            self.events.extend(events)  # HEC indexes the events before the first bad one
        record["indexed"] = len(events)
        record["events"] = len(events) + (1 if error else 0)
        if error is not None:
            status, doc = error
            if f.echo_authorization:
                doc["text"] += f" (Authorization: {handler.headers.get('Authorization')})"
            return self._done(handler, record, raw, status, doc)
        if n < f.lose_response_first:
            time.sleep(f.stall_seconds)  # indexed, but the answer comes too late
        doc = {"text": "Success", "code": 0}
        if f.ack:
            with self.lock:
                doc["ackId"] = self._next_ack
                self._acks[self._next_ack] = f.ack_false_polls
                self._next_ack += 1
        return self._done(handler, record, raw, 200, doc)

    def _parse(self, raw: bytes) -> tuple[list[dict[str, Any]], tuple[int, dict[str, Any]] | None]:
        decoder = json.JSONDecoder()
        text = raw.decode("utf-8", errors="replace")
        events: list[dict[str, Any]] = []
        pos, i = 0, 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                return events, None
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                return events, (400, _err("Invalid data format", 6, i))
            if not isinstance(obj, dict) or "event" not in obj:
                return events, (400, _err("Event field is required", 12, i))
            if obj["event"] in ("", None):
                return events, (400, _err("Event field cannot be blank", 13, i))
            allowed = self.faults.allowed_indexes
            if allowed is not None and obj.get("index", "main") not in allowed:
                return events, (400, _err("Incorrect index", 7, i))
            event = obj["event"]
            if isinstance(event, dict) and event.get("alert_id") in self.faults.bad_alert_ids:
                return events, (400, _err("Invalid data format", 6, i))
            events.append(obj)
            i += 1

    def answer_acks(self, body: bytes) -> tuple[int, dict[str, Any]]:
        if not self.faults.ack:
            return 400, _err("ACK is disabled", 14)
        try:
            wanted = json.loads(body)["acks"]
        except (ValueError, KeyError, TypeError):
            return 400, _err("Invalid data format", 6)
        out: dict[str, bool] = {}
        with self.lock:
            for ack_id in wanted:
                left = self._acks.get(ack_id)
                if left is None:
                    out[str(ack_id)] = False  # unknown, or already reported true (read once)
                elif left > 0:
                    self._acks[ack_id] = left - 1
                    out[str(ack_id)] = False
                else:
                    del self._acks[ack_id]
                    out[str(ack_id)] = True
        return 200, {"acks": out}

    def _done(
        self,
        handler: _Handler,
        record: dict[str, Any],
        raw: bytes,
        status: int,
        doc: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.requests.append(
                Request(
                    path=EVENT_PATH,
                    status=status,
                    events=record.get("events", 0),
                    indexed=record.get("indexed", 0),
                    body_bytes=record["body_bytes"],
                    raw_bytes=len(raw),
                    gzip=record["gzip"],
                    client_port=handler.client_address[1],
                    channel=record["channel"],
                )
            )
        return status, doc, headers or {}

    def record_other(self, handler: _Handler, path: str, status: int, body: bytes) -> None:
        with self.lock:
            self.requests.append(
                Request(
                    path, status, 0, 0, len(body), len(body), False, handler.client_address[1], ""
                )
            )


def _err(text: str, code: int, invalid_event: int | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"text": text, "code": code}
    if invalid_event is not None:
        doc["invalid-event-number"] = invalid_event
    return doc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hec: HecServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `requests`, not stderr

    def do_POST(self) -> None:
        hec = self.server.hec
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        channel = (
            self.headers.get("X-Splunk-Request-Channel")
            or (parse_qs(url.query).get("channel", [""])[0])
        )
        auth = self.headers.get("Authorization", "")
        if not auth:
            status, doc, headers = 401, _err("Token is required", 2), {}
        elif not auth.startswith("Splunk "):
            status, doc, headers = 401, _err("Invalid authorization", 3), {}
        elif auth.removeprefix("Splunk ") != hec.token:
            status, doc, headers = 403, _err("Invalid token", 4), {}
            if hec.faults.echo_authorization:
                doc["text"] += f" ({auth})"
        elif url.path == EVENT_PATH:
            status, doc, headers = hec.answer_events(self, body, channel)
            self._send(status, doc, headers)
            return
        elif url.path == ACK_PATH:
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                try:
                    body = gzip.decompress(body)
                except (OSError, EOFError):
                    body = b"not gzip"
            status, doc = hec.answer_acks(body)
            headers = {}
        else:
            status, doc, headers = 404, {"text": "The requested URL was not found", "code": 404}, {}
        hec.record_other(self, url.path, status, body)
        self._send(status, doc, headers)

    def _send(self, status: int, doc: dict[str, Any], headers: dict[str, str]) -> None:
        faults = self.server.hec.faults
        reason: str | None = None
        data = b""
        if faults.echo is not None and status >= 300:
            said = faults.echo(self.headers.get("Authorization", ""))
            if faults.echo_in_reason:
                reason, data = f"Unavailable for {said}", b"<html>unavailable</html>"
            else:
                doc = {**doc, "text": f"{doc.get('text', '')} (you sent: {said})"}
        data = data or json.dumps(doc).encode()
        try:
            self.send_response(status, reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (timeout): nobody to answer


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, and the
    certificate's PEM file (the CA bundle a client needs to trust it)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = folder / "hec-cert.pem"
    key_pem = folder / "hec-key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    return context, cert_pem
