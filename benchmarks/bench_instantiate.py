"""instantiate side by side: corelib, Hydra, fiddle and a minimal 15-line walker.

Prints medians of process CPU time per build and each tool's ratio to the walker for
(a) 1,000 sibling target leaves under one root, (b) chains 200 and 10,000 deep, (c) a
10,000-node tree of mixed dicts, lists and targets, each untyped and typed (annotated targets,
so corelib checks every value); (d) building the LazyCall config itself; (e) the same trees with
1,000 references (``${scales[i]}``), against the plain build and against OmegaConf's
interpolation, on a first build (strings never seen: the limit of 2x plain is checked against
it) and on a second build of the same tree; and the cold start of ``import corelib`` against
``import hydra.utils``.

Every tool starts from the same plain dict, as read from a file: the headline ``hydra`` and
``fiddle`` columns include their conversion of it (to an OmegaConf DictConfig inside Hydra's
``instantiate``; to ``fdl.Config`` objects for fiddle). The ``prebuilt`` columns convert before
the clock starts and time the build alone.

    python benchmarks/bench_instantiate.py [--repeat N] [--only trees references start_up]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_targets

from corelib import L, instantiate, resolve

# --- the yardstick: a minimal recursive _target_ walker (no validation, errors or sharing) ---
_located: dict[str, Any] = {}


def walker(node: Any) -> Any:
    if isinstance(node, dict):
        built = {k: walker(v) for k, v in node.items() if k != "_target_"}
        if "_target_" not in node:
            return built
        path = node["_target_"]
        if path not in _located:
            module, _, name = path.rpartition(".")
            _located[path] = getattr(importlib.import_module(module), name)
        return _located[path](**built)
    if isinstance(node, list):
        return [walker(v) for v in node]
    return node


# --- trees (plain dicts with import-path targets, as read from a file) ---
def siblings(n: int, prefix: str) -> dict[str, Any]:
    leaves = [{"_target_": f"bench_targets.{prefix}leaf", "x": i, "y": 1.5} for i in range(n)]
    return {"_target_": f"bench_targets.{prefix}collect", "children": leaves}


def chain(depth: int, prefix: str) -> dict[str, Any]:
    tree: Any = {"_target_": f"bench_targets.{prefix}leaf", "x": 0}
    for i in range(depth):
        tree = {"_target_": f"bench_targets.{prefix}node", "child": tree, "value": i}
    return tree


def mixed(n_nodes: int, prefix: str, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    root: dict[str, Any] = {"_target_": f"bench_targets.{prefix}collect", "children": []}
    open_lists = [root["children"]]
    count = 1
    while count < n_nodes:
        parent = rng.choice(open_lists)
        kind = rng.random()
        if kind < 0.5:
            parent.append({"_target_": f"bench_targets.{prefix}leaf", "x": count, "y": 0.5})
        elif kind < 0.7:
            items: list[Any] = []
            parent.append(items)
            open_lists.append(items)
        elif kind < 0.85:
            child: list[Any] = []
            parent.append({"_target_": f"bench_targets.{prefix}collect", "children": child})
            open_lists.append(child)
        else:
            inner: list[Any] = []
            parent.append({"name": f"n{count}", "items": inner})
            open_lists.append(inner)
        count += 1
    return root


def to_fiddle(tree: Any) -> Any:
    import fiddle as fdl

    if isinstance(tree, dict):
        kwargs = {k: to_fiddle(v) for k, v in tree.items() if k != "_target_"}
        if "_target_" not in tree:
            return kwargs
        fn = getattr(bench_targets, tree["_target_"].rpartition(".")[2])
        return fdl.Config(fn, **kwargs)
    if isinstance(tree, list):
        return [to_fiddle(v) for v in tree]
    return tree


def cpu_once(fn: Callable[[], Any]) -> float | None:
    """Process CPU seconds of one fn() call; None if it failed (e.g. RecursionError)."""
    start = time.process_time()
    try:
        fn()
    except Exception as error:
        if not isinstance(error, RecursionError):
            print(f"    ({type(error).__name__}: {str(error)[:80]})")
        return None
    return time.process_time() - start


def cpu_median(fn: Callable[[], Any], repeat: int) -> float | None:
    """Median process CPU seconds of fn() over ``repeat`` calls; None if it failed."""
    times = [cpu_once(fn) for _ in range(repeat)]
    return None if None in times else statistics.median(t for t in times if t is not None)


def tools() -> dict[str, Callable[[Any], Callable[[], Any]]]:
    """Each tool: tree -> a call that builds it (``prebuilt``: converted before timing)."""
    import fiddle as fdl
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf

    return {
        "walker": lambda tree: lambda: walker(tree),
        "corelib": lambda tree: lambda: instantiate(tree),
        "hydra": lambda tree: lambda: hydra_instantiate(tree),
        "fiddle": lambda tree: lambda: fdl.build(to_fiddle(tree)),
        "hydra prebuilt": lambda tree: (lambda cfg: lambda: hydra_instantiate(cfg))(
            OmegaConf.create(tree)
        ),
        "fiddle prebuilt": lambda tree: (lambda cfg: lambda: fdl.build(cfg))(to_fiddle(tree)),
    }


def compare(label: str, tree: Any, repeat: int, skip: frozenset[str] = frozenset()) -> None:
    """Time every tool on ``tree``, interleaved round by round so drift hits all alike."""
    runs: dict[str, Callable[[], Any]] = {}
    failed: set[str] = set()
    for name, make in tools().items():
        if name not in skip:
            try:
                runs[name] = make(tree)
            except Exception:  # e.g. fiddle's or OmegaConf's config cannot be made this deep
                failed.add(name)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeat):
        for name, run in runs.items():
            if name in failed or (name.startswith("hydra") and round_ >= 2):  # seconds per build
                continue
            seconds = cpu_once(run)
            if seconds is None:
                failed.add(name)
            else:
                times[name].append(seconds)
    medians = {n: statistics.median(t) for n, t in times.items() if t and n not in failed}
    base = medians.get("walker")
    cells = []
    for name in tools():
        if name in skip:
            cells.append(f"{name} skipped")
        elif name not in medians:
            cells.append(f"{name} fails")
        elif base:
            cells.append(f"{name} {medians[name] * 1e3:8.2f} ms ({medians[name] / base:6.1f}x)")
        else:
            cells.append(f"{name} {medians[name] * 1e3:8.2f} ms")
    print(f"{label:34s} " + " | ".join(cells))


def with_references(
    make: Callable[[], dict[str, Any]], count: int = 1_000, name: str = "scales"
) -> tuple[Any, Any]:
    """Two copies of the tree ``make()`` builds (its root a collect node, which takes extra
    keys) with a list ``name`` of ``count`` numbers under the root; the first ``count``
    leaves (breadth first) take ``y`` from it: a number in one, ``${name[i]}`` in the other."""
    scales = [0.5 * i for i in range(count)]
    pair = []
    for spell in (lambda i: scales[i], lambda i: f"${{{name}[{i}]}}"):
        tree = {**make(), name: scales}
        queue, seen = [tree], 0
        while queue and seen < count:
            node = queue.pop(0)
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict) and str(child.get("_target_")).endswith("leaf"):
                    if seen < count:
                        child["y"] = spell(seen)
                        seen += 1
                elif isinstance(child, (dict, list)) and child is not scales:
                    queue.append(child)
        pair.append(tree)
    return pair[0], pair[1]


def compare_references(
    label: str, make: Callable[[], dict[str, Any]], repeat: int, firsts: dict[str, float]
) -> None:
    """corelib with and without 1,000 references, resolving alone, and OmegaConf resolving;
    the ratios in parentheses are corelib's time over the other's.

    ``first build``: each round builds a tree whose 1,000 reference strings were never seen
    (the list they name is ``scales<round>``), so nothing about them is cached, as for a
    user's config, built once: the limit (at most 2x plain) is checked against it, and
    ``firsts`` collects its ratio. ``again``: one tree built round after round (its strings
    parsed already), as a sweep rebuilding one config does; ``resolve only`` likewise.
    """
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf

    plain, refs = with_references(make)
    fresh = iter([with_references(make, name=f"scales{r}")[1] for r in range(repeat)])
    runs: dict[str, Callable[[], Any]] = {
        "plain": lambda: instantiate(plain),
        "first": lambda: instantiate(next(fresh)),
        "again": lambda: instantiate(refs),
        "resolve": lambda: resolve(refs),
        "omegaconf": lambda: OmegaConf.to_container(OmegaConf.create(refs), resolve=True),
        "hydra": lambda: hydra_instantiate(refs),
    }
    assert instantiate(refs) == instantiate(plain)  # the references stand for the same values
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeat):
        for name, run in runs.items():
            if name in ("omegaconf", "hydra") and round_ >= 2:  # seconds per build
                continue
            seconds = cpu_once(run)
            if seconds is not None:
                times[name].append(seconds)
    m = {name: statistics.median(t) * 1e3 for name, t in times.items() if t}
    firsts[label] = m["first"] / m["plain"]
    print(
        f"{label:30s} corelib plain {m['plain']:6.2f} ms | with refs, first build "
        f"{m['first']:6.2f} ms ({m['first'] / m['plain']:4.2f}x plain), again "
        f"{m['again']:6.2f} ms ({m['again'] / m['plain']:4.2f}x) | resolve only "
        f"{m['resolve']:6.2f} ms | omegaconf resolve {m['omegaconf']:7.2f} ms "
        f"({m['resolve'] / m['omegaconf']:5.3f}x) | hydra with refs {m['hydra']:7.2f} ms "
        f"({m['again'] / m['hydra']:5.3f}x)"
    )


def references(repeat: int) -> None:
    """(e) 1,000 references in the siblings and mixed trees, untyped and typed."""
    print(
        "--- 1,000 references (${scales[i]}); OmegaConf/Hydra convert the same dict; "
        "the limit, at most 2x plain, is checked against the first build ---"
    )
    firsts: dict[str, float] = {}
    for prefix, kind in (("", "untyped"), ("typed_", "typed")):
        make_siblings = functools.partial(siblings, 1000, prefix)
        compare_references(f"(e) 1,000 siblings [{kind}]", make_siblings, repeat, firsts)
        make_mixed = functools.partial(mixed, 10_000, prefix)
        compare_references(f"(e) mixed 10,000 [{kind}]", make_mixed, max(5, repeat // 2), firsts)
    worst = max(firsts, key=firsts.__getitem__)
    verdict = "within" if firsts[worst] <= 2 else "OVER"
    print(f"(e) slowest first build: {worst[4:]}, {firsts[worst]:4.2f}x plain ({verdict} 2x)")


def lazycall_construction(repeat: int) -> None:
    leaf = L(bench_targets.leaf)
    node = L(bench_targets.node)

    def build_chain(depth: int) -> Any:
        tree = leaf(x=0)
        for i in range(depth):
            tree = node(child=tree, value=i)
        return tree

    def build_siblings(n: int) -> Any:
        return L(bench_targets.collect)(children=[leaf(x=i, y=1.5) for i in range(n)])

    for label, fn, nodes in [
        ("siblings 1,000", lambda: build_siblings(1000), 1001),
        ("chain 1,000", lambda: build_chain(1000), 1001),
        ("chain 10,000", lambda: build_chain(10_000), 10_001),
    ]:
        seconds = cpu_median(fn, repeat) or 0.0
        print(
            f"(d) LazyCall {label:16s} {seconds * 1e3:7.2f} ms = "
            f"{seconds * 1e3 * 1000 / nodes:5.2f} ms per 1,000 nodes"
        )


def cold_start(repeat: int) -> None:
    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    ours, theirs, bare = [], [], []
    for _ in range(repeat):  # interleaved, so drift hits both alike
        bare.append(run("pass"))
        ours.append(run("import corelib"))
        theirs.append(run("import hydra.utils"))
    base = statistics.median(bare)
    ours_s, theirs_s = statistics.median(ours) - base, statistics.median(theirs) - base
    print(
        f"cold start (minus bare python {base * 1e3:.0f} ms): "
        f"import corelib {ours_s * 1e3:.0f} ms, import hydra.utils {theirs_s * 1e3:.0f} ms "
        f"-> {ours_s / theirs_s:.0%} of Hydra"
    )


def bench_base_chain(repeat: int) -> None:
    """Loading a chain of ``_base_`` files (each names the next) is linear in their size.

    Every file sets 20 keys of its own, overrides 5 shared ones and adds to a shared node;
    the time to load the whole chain is set against loading the same files without their
    ``_base_`` line, one by one (reading alone, no merging).
    """
    import tempfile

    from corelib import load_config

    print("--- a chain of _base_ files (median CPU per load) ---")
    with tempfile.TemporaryDirectory() as folder:
        per_file: dict[int, float] = {}
        for length in (25, 50, 100):
            alone = []
            for index in range(length):
                path = Path(folder) / f"chain{length}_{index}.yaml"
                own = [f"k{index}_{key}: {key}" for key in range(20)]
                shared = [f"s{key}: {index}" for key in range(5)]
                nested = [f"node:\n  n{index}: {index}"]
                base = [f"_base_: chain{length}_{index + 1}.yaml"] if index + 1 < length else []
                path.write_text("\n".join([*base, *own, *shared, *nested]) + "\n")
                alone.append(path.with_name(f"alone{length}_{index}.yaml"))
                alone[-1].write_text("\n".join([*own, *shared, *nested]) + "\n")
            top = Path(folder) / f"chain{length}_0.yaml"
            chain_s = cpu_median(lambda top=top: load_config(top), repeat) or 0.0
            alone_s = cpu_median(lambda fs=alone: [load_config(f) for f in fs], repeat) or 0.0
            per_file[length] = chain_s / length
            print(
                f"chain of {length:3d} files: {chain_s * 1e3:7.2f} ms = "
                f"{per_file[length] * 1e3:5.3f} ms per file (each file alone: "
                f"{alone_s * 1e3 / length:5.3f} ms; {chain_s / alone_s:4.2f}x) "
                f"per-file ratio to 25 files: {per_file[length] / per_file[25]:4.2f}"
            )


def trees(repeat: int) -> None:
    """(a)-(c): plain trees, every tool."""
    for prefix, kind in (("", "untyped"), ("typed_", "typed")):
        print(
            f"--- {kind} targets (median CPU per build; ratio to the walker; hydra and fiddle "
            "convert the plain dict inside the timing, 'prebuilt' before it) ---"
        )
        compare(f"(a) 1,000 siblings [{kind}]", siblings(1000, prefix), repeat)
        compare(f"(b) chain 200 [{kind}]", chain(200, prefix), repeat)
        compare(f"(b) chain 10,000 [{kind}]", chain(10_000, prefix), max(3, repeat // 3))
        compare(f"(c) mixed 10,000 [{kind}]", mixed(10_000, prefix), max(5, repeat // 2))


def start_up(repeat: int) -> None:
    """(d) and the cold start."""
    print("--- construction and start-up ---")
    lazycall_construction(repeat)
    cold_start(max(5, repeat // 2))
    bench_base_chain(max(5, repeat // 3))


SECTIONS: list[Callable[[int], None]] = [trees, references, start_up]
"""What main() runs, in order: each takes ``--repeat``; add a section here."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    names = [section.__name__ for section in SECTIONS]
    parser.add_argument("--only", choices=names, nargs="+", default=names, help="sections to run")
    arguments = parser.parse_args()
    instantiate(siblings(2, ""))  # warm plugin discovery once, as any long-lived process would
    for section in SECTIONS:
        if section.__name__ in arguments.only:
            section(arguments.repeat)


if __name__ == "__main__":
    main()
