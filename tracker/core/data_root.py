"""Where the real data sets live: ``$HANDTRACK_DATA``, else ``../shared/data`` seen from the
current folder (the repository checkout, where the evaluation scripts and tests run).

The project never copies these data sets into the repository: evaluation scripts and the tests that
read them resolve the folder here and skip cleanly when it is absent (as on CI). Nothing is derived
from where the package is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "default_data_root", "data_root"]

ENV_VAR = "HANDTRACK_DATA"


def default_data_root() -> Path:
    """``../shared/data`` relative to the current working directory (run from the checkout)."""
    return Path.cwd().resolve().parent / "shared" / "data"


def data_root() -> Path:
    """``$HANDTRACK_DATA`` when set, else :func:`default_data_root`. The folder may not exist."""
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else default_data_root()
