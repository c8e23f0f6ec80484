"""cloudtrail-anomaly: detect principals doing something they have never done before.

The package is the pure core shared by the CLI and every Lambda function: it reads CloudTrail
log objects, normalizes records to (account, principal, action) tuples, checks them against a
`Baseline` store, and turns new tuples into alerts through an `AlertPolicy`. AWS is touched only
by adapters that receive their clients.
"""

__version__ = "0.1.0"
