"""cnnkeras: the classic CNNs in Keras 3, reproduced, tuned, tracked and compared."""

from __future__ import annotations

import inspect

from cnnkeras.onednn import prefer_onednn

prefer_onednn()  # before TensorFlow is imported: see cnnkeras/onednn.py

__version__ = "0.1.0"


def build(name: str, *, input_shape, num_classes: int, **options):
    """Build the registered architecture ``name`` as a ``keras.Model``.

    Unknown names raise ``ValueError`` listing the known ones; ``options`` are
    the builder's keyword options (filters, kernel sizes, strides, ...), checked
    and renamed by ``cnnkeras.architectures.options.resolve_options``.
    """
    from cnnkeras.architectures.options import resolve_options
    from cnnkeras.registry import ARCHITECTURES  # imports only the family of ``name``

    options = resolve_options(name, options)
    return ARCHITECTURES.get(name)(tuple(input_shape), int(num_classes), **options)


def default_input_shape(name: str) -> tuple:
    """The input shape ``name`` is built for by default (its paper's size)."""
    from cnnkeras.registry import ARCHITECTURES

    default = inspect.signature(ARCHITECTURES.get(name)).parameters["input_shape"].default
    return tuple(default)


def load_model(ref):
    """The ``keras.Model`` that ``ref`` names: a ``.keras`` path, ``runs:/<run id>/model``,
    ``models:/NAME/VERSION``, ``models:/NAME/latest`` or ``models:/<model id>``.

    Its class names and input range come with ``cnnkeras.tracking.models.load(ref)``.
    """
    from cnnkeras.tracking.models import load

    return load(ref).model


def train(name=None, *, overrides=(), register=False, **settings):
    """Train a named experiment or a registered architecture, as ``cnnkeras train`` does.

    ``settings``: dataset, data_dir, epochs, batch_size, strategy, precision;
    ``overrides``: ``["section.key=value", ...]``. Returns a ``TrainResult`` (model,
    history, test_metrics, run_id, model_uri, registered).
    """
    from cnnkeras.cli import api

    return api.train(name, overrides=overrides, register=register, **settings)


def tune(name=None, *, overrides=(), **settings):
    """Search a named experiment's space, as ``cnnkeras tune`` does.

    ``settings``: tuner, max_trials, dataset, epochs, strategy, precision. Returns a
    ``SearchResult`` (parent_run_id, summary, winner with its registered model URI).
    """
    from cnnkeras.cli import api

    return api.tune(name, overrides=overrides, **settings)


def list_architectures() -> list[str]:
    """The names ``build`` accepts."""
    from cnnkeras.registry import ARCHITECTURES

    return ARCHITECTURES.names()


__all__ = ["build", "default_input_shape", "list_architectures", "load_model", "train", "tune",
           "__version__"]
