"""Lazy package exports: a package's public names imported on first use (PEP 562), so importing the
package itself stays cheap (no torch, OpenCV, MediaPipe or VisPy until a name is used)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name -> the module that defines it.

    Args:
        package: the package's ``__name__`` (for error messages).
        homes: public name -> module path, e.g. ``{"TrackerView": "tracker.view.canvas"}``.
        namespace: the package's ``globals()``; a name is cached there after its first import.

    Usage, in a package's ``__init__.py``::

        __getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
    """

    def __getattr__(name: str) -> Any:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
