"""Where a call came from, coarsely: the source network and the client family.

A principal's networks and client families are tracked like its regions, as pseudo-tuples of
the baseline (`@net:<prefix>`, `@agent:<family>`), so "first call of this principal from this
network" needs no second mechanism and is forgotten after `forget_days` like an action. They
never alert by themselves; the slow-novelty rule (docs/alert-policy.md) asks whether new
actions came with a new one.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

NET_PREFIX = "@net:"
AGENT_PREFIX = "@agent:"
MAX_FAMILY = 64

# Client families whose product token is not the first one, or not telling by itself.
_FAMILIES = (
    ("terraform", "terraform"),
    ("pulumi", "pulumi"),
    ("cloudformation", "cloudformation"),
    ("aws-cli", "aws-cli"),
    ("aws-sdk-go", "sdk-go"),
    ("aws-sdk-java", "sdk-java"),
    ("aws-sdk-js", "sdk-js"),
    ("aws-sdk-dotnet", "sdk-dotnet"),
    ("aws-sdk-ruby", "sdk-ruby"),
    ("aws-sdk-php", "sdk-php"),
    ("aws-sdk-rust", "sdk-rust"),
    ("boto3", "sdk-python"),
    ("botocore", "sdk-python"),
    ("console.amazonaws.com", "console"),
    ("console/", "console"),
    ("signin.amazonaws.com", "console"),
    ("mozilla/", "browser"),
)


_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


@lru_cache(maxsize=4096)
def network_of(source_ip: str) -> str:
    """The /16 (IPv4) or /48 (IPv6) of `source_ip`; "" when it is not an address (an AWS
    service's name, "AWS Internal") or is internal (RFC 1918, carrier-grade NAT, loopback,
    link-local, IPv6 unique-local: VPC endpoints and in-VPC callers): not a place an outsider
    comes from."""
    try:
        ip = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        return ""
    if any(ip in net for net in _INTERNAL):
        return ""
    bits = 16 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@lru_cache(maxsize=4096)
def agent_family(user_agent: str) -> str:
    """The client family of a user agent (console, aws-cli, sdk-python, terraform, ...), else
    its first product name without version; "" for none or an AWS service's own calls."""
    ua = user_agent.strip().lower()
    if not ua or ua == "aws internal" or (ua.endswith(".amazonaws.com") and "console" not in ua):
        return ""
    for marker, family in _FAMILIES:
        if marker in ua:
            return family
    first = ua.lstrip("[").split()[0].split("/")[0].strip("[]()")
    return first[:MAX_FAMILY]
