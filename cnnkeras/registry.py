"""One registry of named builders: architectures, search spaces, experiments.

A name is the registry key, the config value, the ``hp.Choice`` value and the
MLflow tag, so it is the one string users see everywhere.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, Mapping, Optional, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to objects that refuses duplicates and explains misses.

    With an ``index`` (name -> the module that registers it) the registry knows its
    names before any module is imported, and imports a module only when one of its
    names is first asked for: ``cnnkeras list`` need not load TensorFlow, and
    ``build("lenet5")`` loads only the LeNet family. A module that registers a name
    the index does not give it raises, so the index cannot drift.
    """

    def __init__(self, kind: str, *, index: Optional[Mapping[str, str]] = None):
        self.kind = kind
        self._index = dict(index or {})
        self._items: dict[str, T] = {}
        self._metadata: dict[str, dict] = {}

    def register(self, name: str, **metadata) -> Callable[[T], T]:
        """Decorator form of ``add``; keyword metadata (e.g. ``small_input_shape``) is kept."""

        def decorator(obj: T) -> T:
            self.add(name, obj, **metadata)
            return obj

        return decorator

    def add(self, name: str, obj: T, **metadata) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered.")
        module = getattr(obj, "__module__", None)
        if self._index and self._index.get(name) != module:
            raise ValueError(
                f"{self.kind} {name!r} is registered by {module}, but the index names "
                f"{self._index.get(name)}. Add it to the {self.kind} index."
            )
        self._items[name] = obj
        self._metadata[name] = dict(metadata)

    def metadata(self, name: str) -> dict:
        self.get(name)  # unknown names raise the usual error
        return dict(self._metadata[name])

    def get(self, name: str) -> T:
        if name in self._index and name not in self._items:
            importlib.import_module(self._index[name])
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ValueError(
                f"Unknown {self.kind} {name!r}. Known {self.kind}s: {known}."
            ) from None

    def names(self) -> list[str]:
        return sorted({*self._items, *self._index})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def family_index(families: Mapping[str, tuple]) -> dict[str, str]:
    """``{module: names}`` under ``cnnkeras.architectures`` -> ``{name: module path}``."""
    return {name: f"cnnkeras.architectures.{module}"
            for module, names in families.items() for name in names}


ARCHITECTURES: Registry[Callable] = Registry("architecture", index=family_index({
    "alexnet": ("alexnet", "zfnet"),
    "googlenet": ("googlenet",),
    "inception": ("inception_v3",),
    "lecture": ("lecture_cnn",),
    "lenet": ("lenet5", "lenet5_modern"),
    "nn_segmentation": ("atrous_segmenter", "transpose_decoder"),
    "nn_variants": ("conv1d_sequence", "conv3d_volume", "separable_cnn"),
    "resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
}))
