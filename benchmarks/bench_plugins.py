"""Cost of ``corelib plugins`` with 50 small plugin distributions installed against 1.

Each fake distribution (a ``*.dist-info`` with ``METADATA`` and ``entry_points.txt`` plus a
light entry module registering three lazy components) lives in its own temp directory put on
``PYTHONPATH``, so ``importlib.metadata`` discovers it like an installed one. The two setups run
alternately in one session; the script prints the medians of wall time and of the child's CPU
time for the whole command, the in-process discovery time, and the ratios (target: < 2x).

``--command "list"`` (or ``"--version"``, any corelib arguments) times that command instead, as
a plain ``python -m corelib ...`` process (wall and CPU only): a built-in command other than
``plugins`` must not ask plugins for their commands, so ``--version`` costs the same with 50
plugins as with 1.

    .venv/bin/python benchmarks/bench_plugins.py [--plugins 50] [--repeats 15] [--command ARGS]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PLUGIN = """\
from corelib import hookimpl


@hookimpl
def corelib_register(registry):
    for name in ("model", "trainer", "callback"):
        registry.register(name + "s", name, "{module}_components:Component")
"""

# Runs the command in-process after timing plugin discovery and loading on their own.
CHILD = """\
import sys, time
from corelib._cli import main
from corelib.registry import get_plugin_manager
start = time.perf_counter()
get_plugin_manager().reports()
loaded = time.perf_counter() - start
code = main(["plugins"])
sys.stderr.write(f"LOAD_SECONDS {loaded}\\n")
raise SystemExit(code)
"""


def install_fake_plugins(root: Path, count: int) -> None:
    """Write ``count`` plugin distributions (entry module + dist-info) under ``root``."""
    for index in range(count):
        module = f"bench_plugin_{index:03d}"
        (root / f"{module}.py").write_text(PLUGIN.format(module=module))
        dist_info = root / f"bench_plugin_{index:03d}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: bench-plugin-{index:03d}\nVersion: 1.0\n"
        )
        (dist_info / "entry_points.txt").write_text(f"[corelib.plugins]\np{index:03d} = {module}\n")


def run_once(plugin_dir: Path, command: list[str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, child CPU seconds and in-process load seconds of one ``corelib plugins``.

    With ``command``, of ``python -m corelib COMMAND`` instead (load seconds: 0, not measured).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(REPO)])}
    env.pop("CORELIB_DISABLE_PLUGIN_AUTOLOAD", None)
    argv = ["-c", CHILD] if command is None else ["-m", "corelib", *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *argv], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if command is not None:
        return wall, cpu, 0.0
    load = float(result.stderr.split("LOAD_SECONDS ")[1].split()[0])
    return wall, cpu, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--command", type=shlex.split, help="time 'corelib COMMAND' instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        install_fake_plugins(Path(one), 1)
        install_fake_plugins(Path(many), args.plugins)
        samples: dict[str, list[tuple[float, float, float]]] = {"1": [], "many": []}
        run_once(Path(one), args.command)  # warm the file-system caches and byte-code files
        run_once(Path(many), args.command)
        for _ in range(args.repeats):
            samples["1"].append(run_once(Path(one), args.command))
            samples["many"].append(run_once(Path(many), args.command))
    medians = {
        key: [statistics.median(column) for column in zip(*rows, strict=True)]
        for key, rows in samples.items()
    }
    timed = "plugins" if args.command is None else shlex.join(args.command)
    print(f"corelib {timed}, median of {args.repeats} alternating runs (ms)")
    print(f"{'':24}{'1 plugin':>12}{f'{args.plugins} plugins':>14}{'ratio':>9}")
    labels = ["wall, whole command", "CPU, whole command", "discover+load"]
    for column, label in enumerate(labels[: 2 if args.command else 3]):
        small, large = medians["1"][column], medians["many"][column]
        print(f"{label:24}{small * 1e3:12.1f}{large * 1e3:14.1f}{large / small:8.2f}x")


if __name__ == "__main__":
    main()
