"""What every subcommand shares: registration, the --set and runtime flags, the resolved config."""

from __future__ import annotations

import argparse
import dataclasses
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
    """``config`` with CLI flags and --set overrides applied (flags first)."""
    from cnnkeras.config import apply_overrides

    pairs = [f"{key}={value}" for key, value in fields.items() if value is not None]
    for flag, key in (("strategy", "runtime.strategy"), ("precision", "runtime.precision")):
        if getattr(args, flag, None):
            pairs.append(f"{key}={getattr(args, flag)}")
    config = apply_overrides(config, pairs + list(args.overrides))
    from cnnkeras.architectures.options import resolve_options  # checked before anything runs

    options = resolve_options(config.model.architecture, config.model.options)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, options=options))


def start_runtime(config):
    """Precision and strategy, created once here at the entry point."""
    from cnnkeras import distribute

    distribute.set_precision(config.runtime.precision)
    return distribute.create_strategy(config.runtime.strategy,
                                      cpu_devices=config.runtime.cpu_devices)
