"""One registry of named builders: architectures, search spaces, experiments.

A name is the registry key, the config value, the ``hp.Choice`` value and the
MLflow tag, so it is the one string users see everywhere.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to objects that refuses duplicates and explains misses."""

    def __init__(self, kind: str):
        self.kind = kind
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
        self._items[name] = obj
        self._metadata[name] = dict(metadata)

    def metadata(self, name: str) -> dict:
        self.get(name)  # unknown names raise the usual error
        return dict(self._metadata[name])

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(
                f"Unknown {self.kind} {name!r}. Known {self.kind}s: {known}."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


ARCHITECTURES: Registry[Callable] = Registry("architecture")
