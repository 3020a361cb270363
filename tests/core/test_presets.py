"""Presets from the command line (``KEY=@NAME``) and list appends (``KEY[+]=VALUE``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _corelib_cli import run_corelib
from my_app import Net, Optimizer

from corelib import ConfigError, apply_overrides, instantiate, load_config, save_config, to_dict
from corelib._overrides import set_paths

PRESET_FORMATS = (".yaml", ".yml", ".json", ".toml")


def _config(tmp_path: Path) -> Path:
    (tmp_path / "train.yaml").write_text(
        "optimizer:\n  _target_: my_app.Optimizer\n  lr: 0.1\n"
        "model:\n  encoder:\n    _target_: my_app.Net\n    width: 1\n"
        "callbacks: [a]\nname: run\n"
    )
    return tmp_path / "train.yaml"


@pytest.mark.parametrize("fmt", PRESET_FORMATS)
def test_a_preset_replaces_the_key_with_the_file_in_the_keys_folder(tmp_path, fmt):
    cfg = load_config(_config(tmp_path))
    save_config(
        {"_target_": "my_app.Optimizer", "lr": 0.5, "algo": "AdamW"},
        (tmp_path / "optimizer" / f"adamw{fmt}"),
    )
    edited = apply_overrides(cfg, ["optimizer=@adamw"])
    assert instantiate(edited.optimizer) == Optimizer(0.5, "AdamW")
    assert cfg.optimizer.lr == 0.1  # the input is unchanged


def test_a_python_preset_is_read_for_a_trusted_config(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "fast.py").write_text("lr = 2.0\nalgo = 'fast'\n")
    assert apply_overrides(cfg, ["optimizer=@fast"]).optimizer == {"lr": 2.0, "algo": "fast"}


def test_a_nested_key_reads_from_nested_folders(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "model" / "encoder").mkdir(parents=True)
    (tmp_path / "model" / "encoder" / "small.yaml").write_text("_target_: my_app.Net\nwidth: 2\n")
    assert instantiate(apply_overrides(cfg, ["model.encoder=@small"]).model.encoder) == Net(2)


def test_a_preset_may_have_bases_and_be_added_with_plus(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "head").mkdir()
    (tmp_path / "head" / "common.yaml").write_text("_target_: my_app.Net\nwidth: 3\n")
    (tmp_path / "head" / "big.yaml").write_text("_base_: common.yaml\nwidth: 30\n")
    edited = apply_overrides(cfg, ["+head=@big"])
    assert instantiate(edited.head) == Net(30)
    with pytest.raises(ConfigError, match="already exists"):
        apply_overrides(edited, ["+head=@big"])


def test_a_missing_preset_names_the_files_tried_and_close_matches(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "adamw.yaml").write_text("lr: 1\n")
    with pytest.raises(ConfigError) as info:
        apply_overrides(cfg, ["optimizer=@adamv"])
    message = str(info.value)
    assert "override 'optimizer=@adamv': no preset 'adamv'" in message
    for suffix in (".yaml", ".yml", ".json", ".toml", ".py"):
        assert str(tmp_path / "optimizer" / f"adamv{suffix}") in message
    assert "close matches: 'adamw'" in message


def test_a_misspelled_key_is_reported_before_any_preset_is_looked_for(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'optimzer'; did you mean 'optimizer'"):
        apply_overrides(load_config(_config(tmp_path)), ["optimzer=@adamw"])


def test_an_ambiguous_preset_names_both_files(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "sgd.yaml").write_text("lr: 1\n")
    (tmp_path / "optimizer" / "sgd.json").write_text('{"lr": 2}')
    with pytest.raises(ConfigError, match="ambiguous preset") as info:
        apply_overrides(cfg, ["optimizer=@sgd"])
    assert "sgd.yaml" in str(info.value) and "sgd.json" in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer=@../train", "'../train' cannot name a preset folder or file"),
        ("optimizer=@.hidden", "'.hidden' cannot name a preset folder or file"),
        ("optimizer=@", "'' cannot name a preset folder or file"),
        ("a/b=@x", "'a/b' cannot name a preset folder or file"),
    ],
)
def test_preset_names_cannot_leave_the_folder(tmp_path, override, message):
    cfg = load_config(_config(tmp_path))
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(cfg, [f"+{override}"] if override.startswith("a/") else [override])


def test_a_value_starting_with_at_is_written_quoted(tmp_path):
    cfg = load_config(_config(tmp_path))
    assert apply_overrides(cfg, ["name='@home'"]).name == "@home"


def test_a_config_built_in_code_names_its_preset_folder(tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "sgd.yaml").write_text("lr: 3\n")
    cfg = {"optimizer": {"lr": 1}}
    with pytest.raises(ConfigError, match="not loaded from a file; pass"):
        apply_overrides(cfg, ["optimizer=@sgd"])
    assert apply_overrides(cfg, ["optimizer=@sgd"], config_dir=tmp_path)["optimizer"] == {"lr": 3}


def test_append_adds_an_item_to_a_list(tmp_path):
    cfg = load_config(_config(tmp_path))
    edited = apply_overrides(cfg, ["callbacks[+]=b", "callbacks[+]={x: 1}"])
    assert to_dict(edited.callbacks) == ["a", "b", {"x": 1}]
    assert cfg.callbacks == ["a"]


def test_append_a_preset(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "callbacks").mkdir()
    (tmp_path / "callbacks" / "log.yaml").write_text("every: 5\n")
    assert apply_overrides(cfg, ["callbacks[+]=@log"]).callbacks == ["a", {"every": 5}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("name[+]=x", r"'name' is a str \('run'\), not a list; \[\+\]= appends to a list"),
        ("nope[+]=x", "unknown key 'nope'"),
        ("+callbacks[+]=x", r"takes no '\+', '\+\+' or '~'"),
        ("callbacks[+]", r"takes no '\+', '\+\+' or '~'"),
    ],
)
def test_bad_appends_name_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(load_config(_config(tmp_path)), [override])


def test_presets_and_appends_are_not_trusted_as_command_line_values():
    assert set_paths(["a=@x", "b[+]=1", "c=2", "+d='@y'"]) == ["c", "d"]


# Safe mode: through the CLI, a data config takes presets from its folder only, and no .py.


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "main").mkdir(parents=True)
    (project / "netlib.py").write_text(
        "class Net:\n    def __init__(self, width=1):\n        self.width = width\n"
        "    def run(self):\n        return f'width={self.width}'\n"
    )
    (project / "train.yaml").write_text("main:\n  _target_: netlib.Net\n  width: 1\n")
    (project / "main" / "wide.yaml").write_text("_target_: netlib.Net\nwidth: 64\n")
    (project / "main" / "code.py").write_text("width = 7\n")
    (tmp_path / "outside.yaml").write_text("width: 99\n")
    (project / "main" / "escape.yaml").symlink_to(tmp_path / "outside.yaml")
    return project


def test_safe_mode_refuses_a_preset_folder_that_leads_outside(tmp_path):
    project = _project(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "wide.yaml").write_text("width: 3\n")
    (project / "other").symlink_to(tmp_path / "elsewhere")
    (project / "train.yaml").write_text("main: {_target_: netlib.Net}\nother: {}\n")
    result = run_corelib(project, "show", "train.yaml", "other=@wid")
    assert result.returncode == 2
    assert "the preset folder other leads outside" in result.stderr
    assert "wide" not in result.stderr  # the outside folder was not listed


def test_a_preset_from_the_command_line_runs(tmp_path):
    project = _project(tmp_path)
    result = run_corelib(project, "run", "train.yaml", "main=@wide", "--allow-import", "netlib")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "width=64"


@pytest.mark.parametrize(
    ("preset", "rule"), [("code", "cannot use the .py preset"), ("escape", "lies outside")]
)
def test_safe_mode_refuses_python_presets_and_presets_outside_the_folder(tmp_path, preset, rule):
    project = _project(tmp_path)
    result = run_corelib(project, "show", "train.yaml", f"main=@{preset}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"corelib: error: override 'main=@{preset}'")
    assert "refused in safe mode" in lines[0] and rule in lines[0]
    assert run_corelib(project, "show", "train.yaml", f"main=@{preset}", "--unsafe").returncode == 0
