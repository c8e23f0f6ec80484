"""The names a deployment parameter and a function's settings both check (trail bucket and
prefix, organization id, Glue names) are accepted by the package exactly when the functions
accept them at cold start: infra/settings.js and trail/layout.py read one names.json."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cloudtrail_anomaly.athena.schema import NAME_RE
from cloudtrail_anomaly.trail.layout import BUCKET_RE, ORG_ID_RE, PREFIX_RE

ROOT = Path(__file__).resolve().parent.parent

SAMPLES = {
    "bucket": [
        "my-trail",
        "a.b-c",
        "ab",
        "a..b",
        "192.168.1.1",
        "xn--trail",
        "Trail",
        "trail\n",
        "trail-",
    ],
    "prefix": [
        "cloudtrail",
        "org/ct",
        "a/./b",
        "a/../b",
        "..",
        "a b",
        "a//b",
        "ct\n",
        "caf\u00e9",
        "x!y",
        "x'y",
    ],
    "orgId": ["o-abc123def4", "o-abc", "o-ABC123DEF4", "o-abc123def4\n", "o-abc123def\u0664"],
    "glue": ["cloudtrail", "_t", "1table", "Table", "a" * 129, "t\n"],
}
PYTHON = {"bucket": BUCKET_RE, "prefix": PREFIX_RE, "orgId": ORG_ID_RE, "glue": NAME_RE}


def test_the_package_and_the_cold_start_accept_the_same_names() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: infra/settings.js runs on node")
    script = (
        "const {NAME} = require('./infra/settings.js');"
        "const samples = JSON.parse(process.argv[1]); const out = {};"
        "for (const [k, vs] of Object.entries(samples)) out[k] = vs.map((v) => NAME[k].test(v));"
        "console.log(JSON.stringify(out));"
    )
    result = subprocess.run(
        ["node", "-e", script, json.dumps(SAMPLES)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    javascript = json.loads(result.stdout)
    for kind, values in SAMPLES.items():
        python = [PYTHON[kind].fullmatch(v) is not None for v in values]
        assert javascript[kind] == python, kind
        assert any(python) and not all(python), kind  # the samples say something


@pytest.mark.parametrize(
    ("bucket", "prefix", "org_id"),
    [("my-trail\n", "", ""), ("my-trail", "cloudtrail\n", ""), ("my-trail", "", "o-abc123def4\n")],
)
def test_a_trailing_newline_is_refused(bucket: str, prefix: str, org_id: str) -> None:
    from cloudtrail_anomaly.trail.layout import SqlInputError, TrailLayout

    TrailLayout(bucket.strip(), prefix.strip(), org_id.strip())  # accepted without it
    with pytest.raises(SqlInputError):
        TrailLayout(bucket, prefix, org_id)
