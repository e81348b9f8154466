"""The command line: `cnnkeras SUBCOMMAND ...` (also `python -m cnnkeras`).

The one place that wires the library, the named experiments and the tuning
entry point together. A mistake of the user's prints one line and exits 2.
Each module here declares a few subcommands (``common.command``); this one parses
and runs them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

from cnnkeras.cli import jobs, models, tracking  # noqa: F401  (they register the subcommands)
from cnnkeras.cli.common import COMMANDS, WITHOUT_TENSORFLOW

__all__ = ["COMMANDS", "WITHOUT_TENSORFLOW", "main"]


class Terminated(SystemExit):
    """SIGTERM or SIGHUP, raised where the process is, so open runs end KILLED."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


def _terminate(signum, frame):
    raise Terminated(signum)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from cnnkeras import logs

    parser = argparse.ArgumentParser(prog="cnnkeras", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="warning", choices=logs.LEVELS,
                        help="debug shows TensorFlow's own log lines (default: warning)")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = {name: register(sub) for name, (register, _) in COMMANDS.items()}
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # a terminated run ends KILLED, not RUNNING
        signal.signal(signum, _terminate)
    logs.configure(args.log_level)
    try:
        if args.command not in WITHOUT_TENSORFLOW:
            logs.import_tensorflow()
        return int(handlers[args.command](args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"cnnkeras {args.command}: error: {err}", file=sys.stderr)
        if getattr(err, "leave_at_once", False):  # e.g. a cluster that lost a worker, whose
            sys.stdout.flush()  # TensorFlow runtime would add a traceback while shutting down
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("cnnkeras: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"cnnkeras {args.command}: stopped by {stop.signal_name}", file=sys.stderr)
        return stop.code


if __name__ == "__main__":
    sys.exit(main())
