"""Builder options: one name per concept in every family, checked against the builder.

The names are Keras' layer arguments. A value per block (or per stage) takes the
argument's plural: ``filters``, ``kernel_sizes``, ``strides``, ``paddings``,
``dilation_rates`` (Keras' ``filters`` and ``strides`` are plural already). One
value for every block keeps Keras' name (``pool_size``, ``depth_multiplier``), and
a hidden dense layer's width is ``dense_units``. A block function's arguments for
its one layer (``stride=``, ``padding=``) are not options; they follow Keras' blocks.

``RENAMED`` lists the names the last release used. Until the next release an old
name builds the same model as the new one and warns once with a ``UserWarning``,
as Keras does for its renamed arguments (``LeakyReLU(alpha=)``,
``Input(input_shape=)``); the old and the new name together raise ``ValueError``.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Mapping

from cnnkeras.registry import ARCHITECTURES

# old name -> (new name, the architectures whose builder took the old one)
RENAMED = {
    "fc_units": ("dense_units", ("alexnet", "zfnet")),
    "rates": ("dilation_rates", ("atrous_segmenter",)),
}


def option_names(name: str) -> list[str]:
    """The keyword options of architecture ``name``'s builder, in its signature's order."""
    parameters = inspect.signature(ARCHITECTURES.get(name)).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def takes_any_option(name: str) -> bool:
    """Whether ``name``'s builder takes ``**options`` (and so checks its own names)."""
    parameters = inspect.signature(ARCHITECTURES.get(name)).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def resolve_options(name: str, options: Mapping[str, Any]) -> dict:
    """``options`` for architecture ``name`` under today's names, checked against its builder.

    An old name (``RENAMED``) is replaced by its new one with a warning; an unknown
    name raises one ``ValueError`` listing the valid ones. ``cnnkeras.build`` calls
    this, and so should whatever resolves a config, so a mistake fails before any
    data loads and the resolved config records only today's names.
    """
    valid = option_names(name)  # an unknown architecture raises, listing the known ones
    resolved = dict(options)
    for old, (new, architectures) in RENAMED.items():
        if old not in resolved or name not in architectures:
            continue
        if new in resolved:
            raise ValueError(f"{name}: {old} is the old name of {new}; pass one of them. "
                             f"Received: {old}={resolved[old]!r}, {new}={resolved[new]!r}")
        warnings.warn(f"`{old}` is renamed `{new}`; the old name is accepted until the next "
                      f"release.", UserWarning, stacklevel=3)
        resolved[new] = resolved.pop(old)
    unknown = sorted(set(resolved) - set(valid))
    if unknown and not takes_any_option(name):
        raise ValueError(f"{name} has no option(s) {', '.join(unknown)}. "
                         f"Valid options: {', '.join(valid) or 'none'}.")
    return resolved
