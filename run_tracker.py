#!/usr/bin/env python
"""handtrack's command line from a checkout: the same as the ``handtrack`` console script
(:mod:`tracker.cli`). ``python run_tracker.py --help`` lists the options."""

import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main())
