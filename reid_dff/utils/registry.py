"""A tiny name -> object registry, so a new backbone, dataset or loss is one decorator, not an if-chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import ReidDffError

T = TypeVar("T", bound=Callable[..., Any])  # classes and functions: what has a __name__


class RegistryKeyError(ReidDffError, KeyError):
    """An unknown registry name; the message lists the names that are registered."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class Registry:
    """Maps names to objects (usually classes or builder functions).

    ``@REGISTRY.register()`` registers under the object's ``__name__``; ``@REGISTRY.register("name")``
    under an explicit name. ``REGISTRY.get(name)`` returns the object or raises ``RegistryKeyError``
    listing every known name.
    """

    def __init__(self, name: str):
        self.name = name
        self._objects: dict[str, Any] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def decorator(obj: T) -> T:
            key = name or obj.__name__
            if key in self._objects:
                raise ValueError(f"{key!r} is already registered in the {self.name} registry")
            self._objects[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> Any:
        """The object registered as ``name``."""
        try:
            return self._objects[name]
        except KeyError:
            known = ", ".join(sorted(self._objects)) or "(none registered)"
            raise RegistryKeyError(f"unknown {self.name} {name!r}; known names: {known}") from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._objects)

    def __contains__(self, name: object) -> bool:
        return name in self._objects

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, names={self.names()})"
