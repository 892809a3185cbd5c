#!/usr/bin/env bash
# CI: install from scratch, then run exactly the test command from README.md; then package handtrack as
# a user gets it: build the wheel, install it (not editable) into a fresh virtual environment with the
# tested versions (constraints.txt), and run the installed `handtrack` command from another folder, so
# that nothing can come from the checkout (package data included: weights and the demo recording).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "wheel: build, install into a fresh venv, run handtrack from $WORK/run"
rm -rf build  # setuptools' staging folder: a stale copy of a moved module would end up in the wheel
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" .
.venv/bin/python -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q -c constraints.txt --upgrade pip
"$WORK/venv/bin/python" -m pip install -q -c constraints.txt "$WORK"/dist/handtrack-*.whl
mkdir "$WORK/run" && cd "$WORK/run"
PATH="$WORK/venv/bin:$PATH" handtrack --source demo --no-view --frames 30 --export x.jsonl
lines=$(wc -l < x.jsonl)
[ "$lines" -eq 30 ] || { echo "wheel: x.jsonl has $lines lines, expected 30" >&2; exit 1; }
# the packages and their data are the installed ones, not the checkout's
REPO="$REPO" "$WORK/venv/bin/python" - <<'EOF'
import os
import sys

import devices, kernels, models, tracker
from tracker.io.sources import DEMO_DIR

site = os.path.join(sys.prefix, "lib")
for where in [m.__file__ for m in (devices, kernels, models, tracker)] + [str(DEMO_DIR)]:
    assert where.startswith(site) and not where.startswith(os.environ["REPO"]), f"not installed: {where}"
print(f"wheel: ok, handtrack {tracker.__version__} from {os.path.dirname(tracker.__file__)}")
EOF
