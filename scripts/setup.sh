#!/usr/bin/env bash
# Set up handtrack on a fresh Debian/Ubuntu machine: system libraries + a virtual environment in .venv.
#   system: libusb-1.0-0 (pyrealsense2), Mesa EGL/GL (VisPy rendering; headless via EGL),
#           libxkbcommon / libxcb-* / libdbus / libfontconfig (the PySide6 window, Qt xcb platform),
#           chromium (the test of the browser viewer served by --websocket, headless)
# Re-running is safe; it reuses .venv when present.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="libusb-1.0-0 libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxrender1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 chromium"
if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $SYSTEM_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing system packages:$missing"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
else
  echo "no apt-get: make sure these (or your distribution's equivalents) are installed: $SYSTEM_PACKAGES" >&2
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"handtrack needs Python 3.11, found {sys.version}"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Every version from constraints.txt, the tested set (pyproject.toml gives the compatible ranges).
# torch==2.13.0 there resolves to the CPU wheel here; a user with a GPU installs a CUDA build of
# torch 2.13.0 into .venv first, which satisfies it.
.venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,lsl,ray]"
echo "handtrack is set up in .venv"
