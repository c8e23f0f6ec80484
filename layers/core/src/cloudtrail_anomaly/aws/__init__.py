"""AWS adapters of the core's seams: the DynamoDB baseline and ledger, the S3 object source, and
the parsing of the notifications that start the real-time Lambda.

Every adapter receives its boto3 client: nothing here creates one, so tests hand in clients
bound to moto and the handler builds its clients once per container.
"""

from __future__ import annotations

from botocore.config import Config


def retry_config(max_attempts: int = 10) -> Config:
    """The botocore config for the real-time clients: adaptive retries (throttling and transient
    errors, with client-side rate limiting) and timeouts shorter than a Lambda invocation."""
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=30,
        tcp_keepalive=True,
    )
