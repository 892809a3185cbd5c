"""handtrack's networks, priors and data engine.

The shipped checkpoints load by name (:mod:`models.registry`)::

    import models
    models.available()                                    # ['hamuco', 'prior_icvl', ..., 'v2v_light']
    net = models.load_pretrained("v2v_light", device=models.resolve_device("auto"))

``import models`` imports neither torch nor any network: the names below are looked up on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.registry import available, load_pretrained, resolve_device

__all__ = ["available", "load_pretrained", "resolve_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
