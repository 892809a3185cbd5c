"""handtrack's networks, priors and data engine.

The shipped checkpoints load by name (:mod:`models.registry`)::

    import models
    models.available()                                    # ['hamuco', 'prior_icvl', ..., 'v2v_light']
    net = models.load_pretrained("v2v_light", device=models.resolve_device("auto"))

``import models`` imports neither torch nor any network: the names below are looked up on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracker.core.lazy import lazy_exports

if TYPE_CHECKING:
    from models.registry import available, load_pretrained, resolve_device

__all__ = ["available", "load_pretrained", "resolve_device"]

__getattr__, __dir__ = lazy_exports(__name__, {name: "models.registry" for name in __all__}, globals())
