"""cnnkeras: the classic CNNs in Keras 3, reproduced, tuned, tracked and compared."""

from __future__ import annotations

import inspect

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


def list_architectures() -> list[str]:
    """The names ``build`` accepts."""
    from cnnkeras.registry import ARCHITECTURES

    return ARCHITECTURES.names()


__all__ = ["build", "default_input_shape", "list_architectures", "__version__"]
