#!/usr/bin/env bash
# Write requirements-lock.txt: the exact versions of corelib's full dependency set (every extra)
# for Python 3.11 on x86-64 Linux, resolved by uv. scripts/setup.sh installs through it.
#   bash scripts/lock.sh           re-resolve after changing pyproject.toml's dependencies
#   bash scripts/lock.sh --check   fail when the lock no longer matches pyproject.toml (CI)
#   bash scripts/lock.sh --upgrade move every pin to the newest release that fits
# The versions already in the lock are kept wherever they still fit, so --check only fails when
# pyproject.toml asks for something the lock does not hold. torch is pinned to the CPU build
# (2.13.0+cpu, from /opt/wheels where the project's machines keep it); the lock names it without
# its local label, so the CUDA build of the same release satisfies it too.
set -euo pipefail
cd "$(dirname "$0")/.."

lock=requirements-lock.txt
mode=${1:-}
uv=(uv)
command -v uv >/dev/null || uv=(.venv/bin/python -m uv)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
torch="torch==${CORELIB_TORCH_VERSION:-2.13.0}"
echo "$torch+cpu" >"$work/torch.in"  # the CPU build, which lies in /opt/wheels on our machines
if [ "$mode" != --upgrade ] && [ -f "$lock" ]; then  # uv keeps the pins of its output file
    sed -E "s/^$torch\$/$torch+cpu/" "$lock" >"$work/lock.txt"
fi
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)

"${uv[@]}" pip compile pyproject.toml "$work/torch.in" --all-extras \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 "${links[@]}" \
    --custom-compile-command "bash scripts/lock.sh" --no-emit-package corelib \
    --quiet -o "$work/lock.txt"
# The local label of the CPU build (+cpu) would refuse the same release's CUDA build; the
# input file's temporary name is replaced by what it stands for.
sed -E -e 's/^(torch==[0-9.]+)\+[a-z0-9.]+$/\1/' \
    -e "s#(-r|via) $work/torch.in#\\1 scripts/lock.sh (torch, CPU build)#" \
    "$work/lock.txt" >"$work/clean.txt"

if [ "$mode" = --check ]; then
    if ! diff -u "$lock" "$work/clean.txt"; then
        echo "scripts/lock.sh: $lock is stale: run 'bash scripts/lock.sh' and commit it" >&2
        exit 1
    fi
    echo "scripts/lock.sh: $lock matches pyproject.toml"
else
    mv "$work/clean.txt" "$lock"
    echo "scripts/lock.sh: wrote $lock ($(grep -c '^[a-zA-Z]' "$lock") packages)"
fi
