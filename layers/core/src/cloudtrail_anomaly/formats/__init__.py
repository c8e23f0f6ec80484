"""Other shapes of the alert, for the tools analysts work in.

Every format is a pure function of the alert's JSON document (`Alert.to_dict()`, the contract),
so a sink can put any of them on the wire from what the outbox holds, whenever it was staged:
`cim` (the flat Splunk CIM Alerts fields, also part of every alert), `ocsf` (an OCSF Detection
Finding), `asff` (an AWS Security Finding, for the Security Hub sink).

`FORMATS` are those a JSON sink (JSON Lines, Splunk HEC, SNS, EventBridge) can be told to write
(`--format`, `ALERT_FORMAT`): `alert` (the document itself, the default) and `ocsf`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .cim import with_cim_fields
from .ocsf import to_ocsf

Format = Callable[[Mapping[str, Any]], dict[str, Any]]
DEFAULT_FORMAT = "alert"
FORMATS: dict[str, Format] = {"alert": with_cim_fields, "ocsf": to_ocsf}


class UnknownFormat(ValueError):
    """A format name no sink knows; the message lists the known ones."""


def formatter(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormat(
            f"unknown alert format {name!r} (known: {', '.join(FORMATS)})"
        ) from None
