"""Frozen, typed experiment configuration, and typed ``section.key=value`` overrides.

An experiment is five sections (data, model, train, tune, runtime; optional transfer). Configs
never change after parsing: overrides produce a new object through
``dataclasses.replace``, and every cross-field rule is checked in
``__post_init__`` so an invalid combination cannot exist.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
SCHEDULES = ("constant", "cosine")  # the learning rate over a run's epochs
TUNERS = ("random", "bayesian", "hyperband", "grid")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "auto", "mixed_float16", "mixed_bfloat16")
FITS = ("resize", "pad")


def _choice(section: str, key: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(
            f"{section}.{key} must be one of {', '.join(choices)}. Received: {value!r}"
        )


def _positive(section: str, key: str, value) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{section}.{key} must be positive. Received: {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they reach the model."""

    dataset: str = "digits"
    data_dir: Optional[str] = None
    image_size: Optional[tuple[int, int]] = None  # None: the architecture's input size
    channels: Optional[int] = None  # None: the architecture's input channels
    fit: str = "resize"  # how a source image reaches image_size: "resize" or zero-"pad"
    validation_fraction: float = 0.1
    test_fraction: float = 0.2
    limit: Optional[int] = None  # use at most this many examples per split
    seed: int = 1337

    def __post_init__(self):
        _choice("data", "fit", self.fit, FITS)
        if self.channels not in (None, 1, 3):
            raise ValueError(f"data.channels must be 1, 3 or None. Received: {self.channels!r}")
        if self.image_size is not None:
            if len(self.image_size) != 2 or min(self.image_size) < 1:
                raise ValueError(
                    f"data.image_size must be two positive sizes (height, width). "
                    f"Received: {self.image_size!r}"
                )
        for key in ("validation_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0 <= value < 1:
                raise ValueError(f"data.{key} must be in [0, 1). Received: {value!r}")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                "data.validation_fraction + data.test_fraction must leave some training data. "
                f"Received: {self.validation_fraction} + {self.test_fraction}"
            )
        _positive("data", "limit", self.limit)


@dataclass(frozen=True)
class ModelConfig:
    """A registered architecture and its builder options."""

    architecture: str = "lecture_cnn"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation knobs; ``batch_size`` is per replica."""

    epochs: int = 5
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    early_stopping_patience: int = 0  # 0: off
    lr_schedule: str = "constant"  # cosine: from learning_rate towards 0 over the epochs

    def __post_init__(self):
        _choice("train", "optimizer", self.optimizer, OPTIMIZERS)
        _choice("train", "lr_schedule", self.lr_schedule, SCHEDULES)
        for key in ("epochs", "batch_size", "learning_rate"):
            _positive("train", key, getattr(self, key))
        if self.early_stopping_patience < 0:
            raise ValueError(
                f"train.early_stopping_patience must be >= 0. "
                f"Received: {self.early_stopping_patience!r}"
            )


@dataclass(frozen=True)
class TuneConfig:
    """A KerasTuner search: which space, which tuner, how many trials."""

    space: str = "lecture_cnn"
    tuner: str = "random"
    max_trials: int = 10
    executions_per_trial: int = 1
    objective: str = "val_accuracy"
    hyperband_max_epochs: int = 4
    directory: str = "tuner_runs"
    overwrite: bool = False

    def __post_init__(self):
        _choice("tune", "tuner", self.tuner, TUNERS)
        for key in ("max_trials", "executions_per_trial", "hyperband_max_epochs"):
            _positive("tune", key, getattr(self, key))


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the work runs: strategy, precision, tracking, outputs."""

    strategy: str = "auto"
    precision: str = "float32"
    jit_compile: bool = False
    cpu_devices: int = 1  # >1 splits the CPU into logical devices (MirroredStrategy on CPU)
    mlflow_experiment: Optional[str] = None  # None: the experiment's name
    output_dir: str = "runs"
    seed: int = 1337
    verbose: int = 1

    def __post_init__(self):
        _choice("runtime", "strategy", self.strategy, STRATEGIES)
        _choice("runtime", "precision", self.precision, PRECISIONS)
        _positive("runtime", "cpu_devices", self.cpu_devices)


@dataclass(frozen=True)
class TransferConfig:
    """The two-phase recipe (``cnnkeras.transfer``): the head on the frozen base, then its top."""
    fine_tune_epochs: Optional[int] = None  # phase 2; None: as many as train.epochs, 0: skip
    fine_tune_from: str = "mixed7"  # first base layer fine-tuned (mixedN: block N's output)
    fine_tune_factor: float = 0.1  # phase 2 learning rate = train.learning_rate * this
    bottlenecks: bool = False  # phase 1 on base features computed once and cached on disk
    run_eagerly: bool = False  # skips graph tracing (10-60 s a phase on a CPU): tiny runs only

    def __post_init__(self):
        if (self.fine_tune_epochs or 0) < 0:
            raise ValueError(f"transfer.fine_tune_epochs must be >= 0 (0 skips fine-tuning). "
                             f"Received: {self.fine_tune_epochs!r}")
        _positive("transfer", "fine_tune_factor", self.fine_tune_factor)


@dataclass(frozen=True)
class ExperimentConfig:
    """A named, complete description of one training run or search."""

    name: str
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    transfer: Optional[TransferConfig] = None  # set: `train` runs the two-phase recipe

    @property
    def mlflow_experiment(self) -> str:
        return self.runtime.mlflow_experiment or self.name


SECTIONS = ("data", "model", "train", "tune", "runtime", "transfer")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_literal(text: str):
    """A Python literal when the text is one (3, 0.1, (32, 64), True, true), else the text."""
    try:  # true/false as well, as every boolean flag is written
        value = ast.literal_eval({"true": "True", "false": "False"}.get(text.strip(), text))
    except (ValueError, SyntaxError):
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_value(hint, text: str):
    """Parse ``text`` as the type ``hint`` (int, float, bool, str, Optional, tuple[int, ...])."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if text.strip().lower() in ("none", "null", ""):
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(inner[0], text)
    if origin is tuple:
        text = text.strip().strip("()[]")
        if args[0] is int:
            text = text.replace("x", ",")  # 28x28 reads as (28, 28)
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(parse_value(args[0], part) for part in parts)
    if hint is bool:
        return _parse_bool(text)
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    return _parse_literal(text)


def apply_overrides(config: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """Return a new config with ``section.key=value`` overrides applied, each parsed by type.

    ``model.options.NAME=VALUE`` sets a builder option (a Python literal or a string).
    Unknown sections or keys raise ``ValueError`` listing the valid ones.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"Override must look like section.key=value. Received: {item!r}")
        config = set_value(config, key.strip(), text.strip())
    return config


def set_value(config: ExperimentConfig, key: str, text: str) -> ExperimentConfig:
    parts = key.split(".")
    section = parts[0]
    if section not in SECTIONS or len(parts) < 2:
        raise ValueError(
            f"Unknown config key {key!r}. Keys look like section.key with section one of "
            f"{', '.join(SECTIONS)}."
        )
    current = getattr(config, section)
    if current is None:  # an optional section this experiment does not have
        raise ValueError(f"Unknown config key {key!r}: {config.name} has no {section} section.")
    hints = typing.get_type_hints(type(current))
    if section == "model" and parts[1] == "options" and len(parts) == 3:
        options = dict(current.options)
        options[parts[2]] = _parse_literal(text)
        return dataclasses.replace(config, model=dataclasses.replace(current, options=options))
    name = parts[1]
    if len(parts) != 2 or name not in hints or name == "options":
        valid = [k for k in hints if k != "options"]
        extra = ", model.options.<option>" if section == "model" else ""
        raise ValueError(
            f"Unknown config key {key!r}. Valid keys in {section}: "
            f"{', '.join(f'{section}.{k}' for k in valid)}{extra}."
        )
    try:
        value = parse_value(hints[name], text)
    except ValueError as err:
        raise ValueError(f"Cannot set {key}={text!r}: {err}") from None
    return dataclasses.replace(config, **{section: dataclasses.replace(current, **{name: value})})


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Plain nested dict (JSON-ready) of a config."""
    result: dict[str, Any] = {"name": config.name, "description": config.description}
    for section in [s for s in SECTIONS if getattr(config, s) is not None]:  # transfer: optional
        value = getattr(config, section)
        result[section] = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    result["model"]["options"] = dict(config.model.options)
    return result


def to_json(config: ExperimentConfig) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True, default=list)


def flatten(config: ExperimentConfig) -> dict[str, Any]:
    """``{"train.epochs": 5, "model.options.filters": (25, 50), ...}`` for MLflow params."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = value

    walk("", to_dict(config))
    return flat
