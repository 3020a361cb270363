#!/usr/bin/env bash
# Set up .venv with corelib, every plugin family and the dev tools. Safe to rerun.
# An argument picks other extras: `bash scripts/setup.sh all` (no dev tools) is enough for
# the main job.
#
# torch is installed first, by pip, pinned to the CPU build that lies on this machine's disk: an
# unpinned `torch` (asked for by corelib's extras or by snorkel) could pull a multi-GB CUDA build.
# The rest goes through uv (the one on PATH, else one pip puts in .venv): 6.5-8.3 s against
# pip's 37 s for `all`. The torch already installed satisfies every range there, so uv leaves
# it alone. Without uv, pip.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
extras=${1:-all,dev}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==${CORELIB_TORCH_VERSION:-2.13.0}"
fi
if command -v uv >/dev/null; then
    uv pip install --quiet --python .venv/bin/python -e ".[${extras}]"
elif .venv/bin/python -m pip install --quiet uv 2>/dev/null; then
    .venv/bin/python -m uv pip install --quiet --python .venv/bin/python -e ".[${extras}]"
else
    .venv/bin/python -m pip install --quiet -e ".[${extras}]"
fi
