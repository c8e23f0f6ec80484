"""The HTML report: one self-contained page (nothing fetched), one table row per alert, every
alert string escaped; `cloudtrail-anomaly report` writes it and refuses what is not an alert.
In a real browser (headless Chromium, when installed): the demo's report renders to a PNG, its
script runs, the DOM has one row per alert, and the severity and account filters (from the URL)
show exactly the matching rows."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.report.html import read_alerts, render_report

from tests import alert_samples

demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"


class Rows(HTMLParser):
    """The alert rows of a page (and every attribute that could fetch something)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.visible: list[str] = []
        self.fetching: list[tuple[str, str]] = []
        self.body: dict[str, str] = {}
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr" and "alert-row" in a.get("class", "").split():
            self.ids.append(a.get("data-id", ""))
            if "hidden" not in a:
                self.visible.append(a.get("data-id", ""))
        if tag == "body":
            self.body = a
        if tag == "script":
            self.scripts += 1
        self.fetching += [(tag, k) for k in a if k in ("src", "href", "srcset", "action", "data")]


def rows_of(page: str) -> Rows:
    parser = Rows()
    parser.feed(page)
    return parser


def test_one_row_per_alert_and_nothing_fetched(emitted_alerts: list[dict[str, Any]]) -> None:
    page = render_report(emitted_alerts)
    rows = rows_of(page)
    assert sorted(rows.ids) == sorted(a["alert_id"] for a in emitted_alerts)
    assert rows.fetching == [] and "<link" not in page and "url(" not in page
    assert "default-src 'none'" in page  # even a stray reference would not be fetched
    assert rows.scripts == 1


def test_alert_strings_are_escaped(emitted_alerts: list[dict[str, Any]]) -> None:
    alert = orjson.loads(orjson.dumps(emitted_alerts[0]))
    alert["principal"]["name"] = HOSTILE
    alert["principal"]["arn"] = HOSTILE
    alert["new_actions"][0]["user_agent"] = HOSTILE
    alert["new_actions"][0]["action"] = HOSTILE
    alert["reasons"] = [HOSTILE]
    alert["account_name"] = HOSTILE
    page = render_report([alert])
    assert HOSTILE not in page and "<img" not in page
    assert rows_of(page).scripts == 1


def test_an_empty_file_gives_a_page_that_says_so() -> None:
    page = render_report([])
    assert "No alerts." in page and rows_of(page).ids == []


def test_the_report_command_writes_the_page(demo_alerts_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(demo_alerts_file), "-o", str(out)]) == 0
    alerts = read_alerts(demo_alerts_file.read_bytes())
    assert len(rows_of(out.read_text(encoding="utf-8")).ids) == len(alerts)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"alert_id": "a"}\n', "alerts.jsonl:1: not an alert"),
        (b"\n{nope\n", "alerts.jsonl:2: not JSON"),
        (
            b'{"alert_id": "a", "severity": "severe", "first_event_time": "2026-01-01T00:00:00Z"}\n',
            "unknown severity 'severe'",
        ),
    ],
)
def test_the_report_command_refuses_what_is_not_an_alert(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "alerts.jsonl"
    source.write_bytes(content)
    assert main(["report", str(source), "-o", str(tmp_path / "r.html")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_a_missing_alerts_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "r.html")]) == 2
    assert "none.jsonl" in capsys.readouterr().err


# -- in a real browser ---------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (Debian: apt-get install chromium); the report is not "
    "checked in a browser",
)
WINDOW = (1400, 1800)


def chromium(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    assert CHROMIUM
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            *args,
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def demo_report(demo_alerts_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(demo_alerts_file), "-o", str(out)]) == 0
    return out


@needs_chromium
def test_the_demo_report_renders_to_a_png(demo_report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    chromium(demo_report.as_uri(), tmp_path, f"--screenshot={png}")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == WINDOW
    assert len(data) > 50_000  # charts and a table, not a blank page


@needs_chromium
def test_the_browser_finds_one_row_per_alert_and_the_script_ran(
    demo_report: Path, demo_alerts_file: Path, tmp_path: Path
) -> None:
    alerts = read_alerts(demo_alerts_file.read_bytes())
    dom = chromium(demo_report.as_uri(), tmp_path, "--dump-dom").stdout.decode()
    rows = rows_of(dom)
    assert rows.body.get("data-ready") == "1"  # the script ran to its end, without an error
    assert sorted(rows.ids) == sorted(a["alert_id"] for a in alerts)
    assert len(rows.visible) == len(alerts) == int(rows.body["data-visible-rows"])


@needs_chromium
def test_the_filters_show_exactly_the_matching_rows(
    demo_report: Path, demo_alerts_file: Path, tmp_path: Path
) -> None:
    alerts = read_alerts(demo_alerts_file.read_bytes())
    severe = {a["alert_id"] for a in alerts if a["severity"] in ("critical", "high")}
    account, _ = Counter(a["account_id"] for a in alerts).most_common(1)[0]
    in_account = {a["alert_id"] for a in alerts if a["account_id"] == account}
    assert severe and in_account != {a["alert_id"] for a in alerts}
    for fragment, expected in (
        ("#severity=critical,high", severe),
        (f"#account={account}", in_account),
        (f"#severity=critical,high&account={account}", severe & in_account),
    ):
        dom = chromium(demo_report.as_uri() + fragment, tmp_path, "--dump-dom").stdout.decode()
        rows = rows_of(dom)
        assert set(rows.visible) == expected, fragment
        assert int(rows.body["data-visible-rows"]) == len(expected)
        assert re.search(rf'id="visible-count">{len(expected)}<', dom)
