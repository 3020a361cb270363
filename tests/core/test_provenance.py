"""Provenance: where every value came from (files and lines, bases, overrides, defaults)."""

from __future__ import annotations

import copy
import pickle
import textwrap
from pathlib import Path

import pytest
import yaml
from _corelib_cli import run_corelib

from corelib import ConfigError, L, apply_overrides, explain, load_config, save_config, to_dict


def _where(cfg, path):
    return [(o.kind, o.file and Path(o.file).name, o.line, o.value) for o in explain(cfg, path)]


def test_yaml_values_know_their_file_and_line(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  width: 3\n\n  depth: 2\nname: x\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert _where(cfg, "model.depth") == [("file", "a.yaml", 4, 2)]
    assert _where(cfg, "name") == [("file", "a.yaml", 5, "x")]
    [origin] = explain(cfg, "model.width")
    assert origin.file == str(tmp_path / "a.yaml") and origin.chain == (origin.file,)


@pytest.mark.parametrize("fmt", [".json", ".toml"])
def test_json_and_toml_values_know_their_file(tmp_path, fmt):
    cfg = load_config(save_config({"model": {"width": 3}}, tmp_path / f"a{fmt}"))
    assert _where(cfg, "model.width") == [("file", f"a{fmt}", None, 3)]


def test_python_values_know_the_assignment_or_the_lazycall_line(tmp_path):
    (tmp_path / "parts.py").write_text("from corelib import L\n\n\nhead = L(dict)(size=2)\n")
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """\
            from corelib import L
            from .parts import head

            lr = 0.1
            model = L(dict)(
                width=3,
            )
            plain = {"a": 1}
            heads = [head]
            """
        )
    )
    cfg = load_config(tmp_path / "train.py")
    assert _where(cfg, "lr") == [("file", "train.py", 4, 0.1)]
    assert _where(cfg, "model.width") == [("file", "train.py", 5, 3)]  # the LazyCall's line
    assert _where(cfg, "plain.a") == [("file", "train.py", 8, 1)]  # the assignment's line
    [origin] = explain(cfg, "heads[0].size")
    assert (Path(origin.file).name, origin.line) == ("parts.py", 4)  # the call, in its file
    assert origin.chain == (str(tmp_path / "train.py"), origin.file)


def test_a_python_config_loaded_by_a_relative_path_names_itself_once(tmp_path, monkeypatch):
    (tmp_path / "train.py").write_text("from corelib import L\nmodel = L(dict)(width=3)\n")
    monkeypatch.chdir(tmp_path)
    [origin] = explain(load_config("train.py"), "model.width")
    assert (origin.file, origin.line, origin.chain) == ("train.py", 2, ("train.py",))


def test_a_node_built_in_code_knows_its_lazycall_line():
    cfg = L(dict)(width=3)
    line = __import__("inspect").currentframe().f_lineno - 1
    [origin] = explain(cfg, "width")
    assert (origin.file, origin.line, origin.value) == (__file__, line, 3)
    assert explain({"a": 1}, "a") == []  # a plain dict in code: nothing known


def test_values_from_bases_name_the_chain_of_files_and_the_last_wins(tmp_path):
    (tmp_path / "base.yaml").write_text("lr: 0.1\nmomentum: 0.9\n")
    (tmp_path / "mid.yaml").write_text("_base_: base.yaml\nlr: 0.2\n")
    (tmp_path / "top.yaml").write_text("_base_: mid.yaml\n\nlr: 0.3\n")
    cfg = load_config(tmp_path / "top.yaml")
    assert _where(cfg, "lr") == [
        ("file", "base.yaml", 1, 0.1),
        ("file", "mid.yaml", 2, 0.2),
        ("file", "top.yaml", 3, 0.3),
    ]
    first = explain(cfg, "momentum")[0]
    assert [Path(f).name for f in first.chain] == ["top.yaml", "mid.yaml", "base.yaml"]
    assert explain(cfg, "lr")[-1].value == cfg.lr


def test_a_long_chain_of_bases_is_shown_by_its_ends(tmp_path):
    for index in range(10):
        base = f"_base_: c{index + 1}.yaml\n" if index < 9 else ""
        (tmp_path / f"c{index}.yaml").write_text(f"{base}v: {index}\n")
    first = explain(load_config(tmp_path / "c0.yaml"), "v")[0]
    assert len(first.chain) == 10
    assert str(first) == (
        f"{tmp_path}/c9.yaml:1 (through {tmp_path}/c0.yaml -> {tmp_path}/c1.yaml -> "
        f"{tmp_path}/c2.yaml -> ...[+4 files] -> {tmp_path}/c7.yaml -> {tmp_path}/c8.yaml -> "
        f"{tmp_path}/c9.yaml)"
    )


def test_overrides_are_recorded_with_their_text_and_position(tmp_path):
    (tmp_path / "a.yaml").write_text("opt:\n  lr: 0.1\n")
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "fast.yaml").write_text("lr: 5\n")
    cfg = load_config(tmp_path / "a.yaml")
    edited = apply_overrides(cfg, ["+x=1", "opt.lr=0.2", "opt.lr=0.3"])
    history = explain(edited, "opt.lr")
    assert [(o.kind, o.text, o.position, o.value) for o in history] == [
        ("file", None, None, 0.1),
        ("override", "opt.lr=0.2", 1, 0.2),
        ("override", "opt.lr=0.3", 2, 0.3),
    ]
    assert len(explain(cfg, "opt.lr")) == 1  # the input's history is unchanged
    preset = apply_overrides(cfg, ["opt=@fast"])
    assert [(o.kind, o.file) for o in explain(preset, "opt")][-1] == (
        "override",
        str(tmp_path / "opt" / "fast.yaml"),
    )
    assert _where(preset, "opt.lr") == [("file", "fast.yaml", 1, 5)]


def test_a_key_inside_a_value_set_whole_has_the_history_of_that_value(tmp_path):
    (tmp_path / "a.yaml").write_text("opt: {}\n")
    edited = apply_overrides(load_config(tmp_path / "a.yaml"), ["opt={lr: 1}"])
    assert [(o.kind, o.text) for o in explain(edited, "opt.lr")] == [
        ("file", None),
        ("override", "opt={lr: 1}"),
    ]


def test_an_unset_parameter_explains_as_its_signature_default(tmp_path):
    (tmp_path / "a.yaml").write_text("opt:\n  _target_: my_app.Optimizer\n  lr: 1\n")
    [origin] = explain(load_config(tmp_path / "a.yaml"), "opt.algo")
    assert (origin.kind, origin.value, origin.text) == ("default", "SGD", "my_app.Optimizer")


def test_a_path_that_leads_nowhere_is_an_error_with_close_matches(tmp_path):
    (tmp_path / "a.yaml").write_text("optimizer:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="no key 'optimiser' at the top level; did you mean"):
        explain(load_config(tmp_path / "a.yaml"), "optimiser.lr")


def test_provenance_changes_nothing_about_the_tree(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  width: 3\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert dict(cfg) == {"model": {"width": 3}} and list(cfg.model) == ["width"]
    for again in (copy.copy(cfg), copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg))):
        assert to_dict(again) == {"model": {"width": 3}}
        assert explain(again, "model.width")[0].line == 2


# The CLI: show --explain and show --defaults.


def test_show_explain_prints_the_value_and_its_history(tmp_path):
    (tmp_path / "base.yaml").write_text("lr: 0.1\n")
    (tmp_path / "top.yaml").write_text("_base_: base.yaml\nlr: 0.2\n")
    result = run_corelib(tmp_path, "show", "top.yaml", "lr=0.3", "--explain", "lr")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "lr: 0.3",
        "  1. base.yaml:1 (through top.yaml -> base.yaml): 0.1",
        "  2. top.yaml:2: 0.2",
        "  3. override #0 'lr=0.3': 0.3  <- holds",
        "  (oldest first; the last entry wins)",
    ]


def test_show_explain_of_a_missing_key_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "top.yaml").write_text("lr: 0.1\n")
    result = run_corelib(tmp_path, "show", "top.yaml", "--explain", "lrr")
    assert result.returncode == 2
    assert result.stderr == (
        "corelib: error: top.yaml: explain 'lrr': no key 'lrr' at the top level; "
        "did you mean 'lr'?\n"
    )


def _project(tmp_path: Path) -> Path:
    (tmp_path / "shapes.py").write_text(
        "from pathlib import Path\n"
        "Path('imported').write_text('yes')\n"
        "class Box:\n"
        "    def __init__(self, width: int, depth: int = 2, name: str = 'box', tags=('a',),"
        " where=Path('.')):\n"
        "        pass\n"
    )
    (tmp_path / "top.yaml").write_text(
        "main:\n  _target_: shapes.Box\n  width: 1\n  name: mine\n"
        "parts:\n- {_target_: shapes.Box}\n"
    )
    return tmp_path


def test_show_defaults_fills_in_signature_defaults_marked_as_such(tmp_path):
    project = _project(tmp_path)
    result = run_corelib(project, "show", "top.yaml", "--defaults", "--allow-import", "shapes")
    assert result.returncode == 0, result.stderr
    assert "  # default\n  depth: 2\n" in result.stdout
    assert "name: mine" in result.stdout and "name: box" in result.stdout  # set, then filled
    shown = yaml.safe_load(result.stdout)
    assert shown["main"] == {
        "_target_": "shapes.Box",
        "width": 1,
        "name": "mine",
        "depth": 2,
        "tags": ["a"],
        "where": "<not writable: PosixPath('.')>",
    }
    assert shown["parts"][0]["depth"] == 2


def test_show_defaults_never_imports_a_refused_target(tmp_path):
    project = _project(tmp_path)
    result = run_corelib(project, "show", "top.yaml", "--defaults")
    assert result.returncode == 0, result.stderr
    assert not (project / "imported").exists()
    assert "# default" not in result.stdout
    assert "top.yaml: main: no defaults shown: refused 'shapes.Box': not allowed" in result.stderr
