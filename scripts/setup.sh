#!/usr/bin/env bash
# Set up .venv with corelib, every plugin family and the dev tools, at the versions of
# requirements-lock.txt. Safe to rerun. An argument picks other extras: `bash scripts/setup.sh
# all` (no dev tools) is enough for the main job.
#
# torch is installed first, by pip, pinned to the CPU build that lies on this machine's disk: an
# unpinned `torch` (asked for by corelib's extras or by snorkel) could pull a multi-GB CUDA build.
# The rest goes through uv (the one on PATH, else the pinned one pip puts in .venv): 6.5-8.3 s
# against pip's 37 s for `all`. Every package is constrained to its locked version
# (requirements-lock.txt, written by scripts/lock.sh), so a fresh machine gets the versions the
# README's figures were measured with; packages already installed at other versions are moved
# to the locked ones.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
extras=${1:-all,dev}
lock=requirements-lock.txt
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==${CORELIB_TORCH_VERSION:-2.13.0}"
fi
if command -v uv >/dev/null; then
    uv=(uv)
elif .venv/bin/python -m pip install --quiet "uv==0.13.10" 2>/dev/null; then
    uv=(.venv/bin/python -m uv)
else
    uv=()
fi
if [ ${#uv[@]} -gt 0 ]; then
    "${uv[@]}" pip install --quiet --python .venv/bin/python --constraint "$lock" \
        --reinstall-package corelib -e ".[${extras}]"
else
    .venv/bin/python -m pip install --quiet --constraint "$lock" -e ".[${extras}]"
fi
