#!/usr/bin/env python
"""Fit the shipped pose priors (the recipe lives in :mod:`models.prior_fit`; card: ``models/weights/PRIORS.md``).

    python scripts/fit_priors.py                 # all three, into models/weights/
    python scripts/fit_priors.py --only nyu --out-dir /tmp/priors
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.prior_fit import main  # noqa: E402

if __name__ == "__main__":
    main()
