"""What every subcommand shares: registration, the --set and runtime flags, the resolved config."""

from __future__ import annotations

import argparse
from typing import Callable

COMMANDS: dict[str, Callable] = {}
WITHOUT_TENSORFLOW = {"list", "ui", "compare", "serve"}  # answer at once; a test keeps them so


def command(name: str, help_text: str):
    """Register ``fn(subparsers) -> handler`` for subcommand ``name``."""

    def decorator(fn):
        COMMANDS[name] = (fn, help_text)
        return fn

    return decorator


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="typed config override, repeatable (e.g. train.epochs=3)")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", help="auto, default, one_device, mirrored, multi_worker")
    parser.add_argument("--precision", help="float32, auto, mixed_float16, mixed_bfloat16")


def resolve_config(config, args, **fields):
    """``config`` with config-key ``fields`` (flags), runtime flags and --set applied."""
    from cnnkeras.cli import api

    pairs = [f"{key}={value}" for key, value in fields.items() if value is not None]
    return api.resolve(config, pairs + list(args.overrides),
                       strategy=getattr(args, "strategy", None),
                       precision=getattr(args, "precision", None))
