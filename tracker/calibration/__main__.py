"""``python -m tracker.calibration``: see :mod:`tracker.calibration.cli`."""

import sys

from tracker.calibration.cli import main

sys.exit(main())
