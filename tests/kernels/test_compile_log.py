"""The first compilation of a kernel says so in the log (a first run waits ~25 s for them); a load
from Numba's on-disk cache says nothing. Child processes with their own empty NUMBA_CACHE_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CODE = """
import logging
import numpy as np
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from kernels import center_of_mass
center_of_mass(np.ones((4, 3)))
center_of_mass(np.ones((5, 3)))  # same types: no second compilation, no second line
"""


def test_compilation_is_announced_once_and_cache_loads_are_silent(tmp_path: Path, repo_root: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}

    def stderr() -> list[str]:
        return subprocess.run([sys.executable, "-c", CODE], cwd=repo_root, env=env, capture_output=True, text=True,
                              timeout=300, check=True).stderr.splitlines()  # fmt: skip

    first = stderr()
    assert first == ["INFO kernels: compiling Numba kernels (first run only, ~25 s of CPU; cached for later runs)..."]
    assert any(tmp_path.rglob("*center_of_mass*.nbi")), "the compilation was not cached"
    assert stderr() == []  # loaded from the cache
