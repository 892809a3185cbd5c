#!/usr/bin/env python
"""handtrack's command line from a checkout: the same as the ``handtrack`` console script
(:mod:`tracker.commands`: :mod:`tracker.cli`, and ``batch`` for :mod:`tracker.batch`).
``python run_tracker.py --help`` lists the options, ``python run_tracker.py batch --help`` the batch's."""

import sys

from tracker.commands import main

if __name__ == "__main__":
    sys.exit(main())
