"""Pictures of a config: ``corelib show CONFIG --graph [mermaid|dot]`` and ``corelib._graph``.

One vertex per node (key path, target), one edge per key, a shared node drawn once with several
incoming edges, list items as ``key[i]`` edges, scalars left out; labels escaped so that no key
or target can inject syntax into either format.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _corelib_cli import run_corelib

from corelib import ConfigError, L, load_config, save_config
from corelib._graph import graph


def small_dag() -> object:
    encoder = L("demo/encoder")(width=8)
    return L("demo/trainer")(
        model=L("demo/model")(encoder=encoder, heads=[L("demo/head")(), encoder]),
        optimizer=L("torch.optim.SGD")(lr=0.1, _partial_=True),
        steps=10,
    )


MERMAID = """\
flowchart TD
  n0["(root)<br>demo/trainer"]
  n1["model<br>demo/model"]
  n2["model.encoder<br>demo/encoder"]
  n3["model.heads#91;0#93;<br>demo/head"]
  n4["optimizer<br>torch.optim.SGD"]
  n0 -->|"model"| n1
  n0 -->|"optimizer"| n4
  n1 -->|"encoder"| n2
  n1 -->|"heads#91;0#93;"| n3
  n1 -->|"heads#91;1#93;"| n2
"""

DOT = """\
digraph config {
  node [shape=box];
  n0 [label="(root)\\ndemo/trainer"];
  n1 [label="model\\ndemo/model"];
  n2 [label="model.encoder\\ndemo/encoder"];
  n3 [label="model.heads[0]\\ndemo/head"];
  n4 [label="optimizer\\ntorch.optim.SGD"];
  n0 -> n1 [label="model"];
  n0 -> n4 [label="optimizer"];
  n1 -> n2 [label="encoder"];
  n1 -> n3 [label="heads[0]"];
  n1 -> n2 [label="heads[1]"];
}
"""


def test_a_shared_node_is_one_vertex_with_an_edge_per_path_in_mermaid() -> None:
    assert graph(small_dag()) == MERMAID


def test_the_same_graph_in_dot() -> None:
    assert graph(small_dag(), "dot") == DOT


@pytest.mark.parametrize("suffix", [".py", ".yaml", ".json", ".toml"])
def test_every_format_draws_the_same_graph(tmp_path: Path, suffix: str) -> None:
    if suffix == ".py":  # a Python config shares a node by naming it twice
        file = tmp_path / "job.py"
        file.write_text(
            "from corelib import L\n"
            "encoder = L('demo/encoder')(width=8)\n"
            "main = L('demo/trainer')(model=L('demo/model')(encoder=encoder, "
            "heads=[L('demo/head')(), encoder]), optimizer=L('torch.optim.SGD')(lr=0.1, "
            "_partial_=True), steps=10)\n"
        )
        cfg = load_config(file)["main"]
    else:  # YAML anchors; JSON and TOML references
        cfg = load_config(save_config(small_dag(), tmp_path / f"job{suffix}"))
    assert shape(graph(cfg, "dot")) == shape(DOT)  # TOML writes tables last: other numbers


def shape(dot: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """A DOT graph up to vertex numbering: its vertices' targets and its (target, key, target)."""
    targets = dict(re.findall(r'  (n\d+) \[label=".*\\n(.*)"\];', dot))
    edges = re.findall(r'  (n\d+) -> (n\d+) \[label="(.*)"\];', dot)
    return sorted(targets.values()), sorted((targets[a], key, targets[b]) for a, b, key in edges)


def test_nested_lists_plain_dicts_and_callables() -> None:
    cfg = {"stages": [[L(len)(), {"x": 1}]], "n": 3}
    assert graph(cfg) == (
        "flowchart TD\n"
        '  n0["(root)"]\n'
        '  n1["stages#91;0#93;#91;0#93;<br>builtins.len"]\n'
        '  n2["stages#91;0#93;#91;1#93;"]\n'
        '  n0 -->|"stages#91;0#93;#91;0#93;"| n1\n'
        '  n0 -->|"stages#91;0#93;#91;1#93;"| n2\n'
    )
    assert graph(42) == "flowchart TD\n"  # no node, no vertex


def test_a_cycle_is_a_config_error_naming_it() -> None:
    node = L("demo/loop")()
    node["self"] = node
    with pytest.raises(ConfigError, match="cannot draw the config: cycle: self refers back"):
        graph(node)


def test_an_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown graph format 'svg'"):
        graph({}, "svg")


ATTACKS = [
    '"]; click n0 call evil()',
    "a\n  n9[evil]\n  click n9 href 'javascript:alert(1)'",
    "%%{init: {'securityLevel': 'loose'}}%%",
    '<img src=x onerror=alert(1)> `**md**` #35; |x| \\" \\n',
    "\u202e\x1b[2J\u00e9",
]
SAFE = r"(?:[A-Za-z0-9_ .:/,+=@()*#;-]|<br>)*"  # entities are #NNN;
MERMAID_LINE = re.compile(rf'  n\d+\["{SAFE}"\]|  n\d+ -->\|"{SAFE}"\| n\d+')
DOT_LINE = re.compile(r'  n\d+ (-> n\d+ )?\[label="([^"\\\n]|\\[\\"n])*"\];')


@pytest.mark.parametrize("text", ATTACKS)
def test_keys_and_targets_cannot_inject_syntax(text: str) -> None:
    cfg = {text: {"_target_": text, text: {"_target_": "x"}}}
    mermaid = graph(cfg).splitlines()
    assert mermaid[0] == "flowchart TD" and len(mermaid) == 6
    assert all(MERMAID_LINE.fullmatch(line) for line in mermaid[1:]), mermaid
    dot = graph(cfg, "dot").splitlines()
    assert dot[:2] == ["digraph config {", "  node [shape=box];"] and dot[-1] == "}"
    assert len(dot) == 8
    assert all(DOT_LINE.fullmatch(line) for line in dot[2:-1]), dot


def test_a_huge_target_or_key_is_cut_short() -> None:
    text = "k" * 100_000
    out = graph({text: {"_target_": text}})
    assert len(out) < 1000 and "#91;+99960 chars#93;" in out


def test_show_graph_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "encoder: &enc {_target_: demo/encoder, width: 8}\n"
        "main: {_target_: demo/trainer, model: *enc, heads: [*enc]}\n"
    )
    mermaid = run_corelib(tmp_path, "show", "job.yaml", "encoder.width=2", "--graph")
    assert (mermaid.returncode, mermaid.stderr) == (0, "")
    assert mermaid.stdout == (
        "flowchart TD\n"
        '  n0["(root)"]\n'
        '  n1["encoder<br>demo/encoder"]\n'
        '  n2["main<br>demo/trainer"]\n'
        '  n0 -->|"encoder"| n1\n'
        '  n0 -->|"main"| n2\n'
        '  n2 -->|"model"| n1\n'
        '  n2 -->|"heads#91;0#93;"| n1\n'
    )
    dot = run_corelib(tmp_path, "show", "job.yaml", "--graph=dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph config {\n")
    bad = run_corelib(tmp_path, "show", "job.yaml", "--graph=svg")
    assert bad.returncode == 2 and "invalid choice: 'svg'" in bad.stderr
