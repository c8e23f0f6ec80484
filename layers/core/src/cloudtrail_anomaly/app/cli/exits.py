"""The exit status of every `cloudtrail-anomaly` subcommand (README "Exit status").

One table for all of them, so a script or a scheduler can tell a clean run from one to look
at again, and both from a command line or a set-up to fix.
"""

from __future__ import annotations

import sys

OK = 0
# The run completed but left work undone: alerts not delivered (kept pending, or refused),
# objects that failed to read, an Athena query that failed; or a --jobs worker was killed.
INCOMPLETE = 1
# Usage or configuration: bad arguments, config, state file, sink or AWS set-up; nothing (more)
# was done. argparse's own errors exit 2 too.
USAGE = 2
# Interrupted (Ctrl-C, SIGINT): 128 + 2, as shells report it.
INTERRUPTED = 130


def error(message: str) -> None:
    """One line on stderr, the way every subcommand reports what stopped it."""
    print(f"cloudtrail-anomaly: error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"cloudtrail-anomaly: warning: {message}", file=sys.stderr)
