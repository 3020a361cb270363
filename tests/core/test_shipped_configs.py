"""Configs that plugins ship: the group ``configs``, names where files go, ``list``, ``cp``.

A plugin registers ``"package:path/in/package"`` (or an absolute ``pathlib.Path``); ``run``,
``show`` and ``check`` take the name where a file is expected, a path that exists winning.
The ddp plugin ships one small training config per strategy, checked and run here for real,
and a real pip install shows a plugin's config reaching users through its package data.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from _corelib_cli import run_corelib
from _venvs import make_venv, run_installed

from corelib import ConfigError, load_config, to_dict
from corelib._shipped import config_file, copy_config, find_config, shipped_configs
from corelib.registry import Registry

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = ("single", "ddp", "fsdp2", "tp", "fsdp2_tp", "pipeline")
HELLO = "_target_: builtins.dict\ngreeting: hello\n"


@pytest.fixture
def package(fresh_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An importable package ``shipdemo`` holding ``configs/hello.yaml``; returns its folder.

    The registry is empty, and installed plugins are not loaded: the tests register configs.
    """
    monkeypatch.setenv("CORELIB_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delitem(sys.modules, "shipdemo", raising=False)  # another test's is cached
    root = tmp_path / "site"
    folder = root / "shipdemo"
    (folder / "configs").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "configs" / "hello.yaml").write_text(HELLO)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(tmp_path)
    return folder


def register(registry: Registry, name: str, ref: object, plugin: str = "demo") -> None:
    registry.bind(plugin, f"plugin {plugin!r}").register("configs", name, ref)


# -- finding a config by name -----------------------------------------------------------------


def test_a_registered_name_qualified_or_short_finds_the_file_in_its_package(
    fresh_registry: Registry, package: Path
) -> None:
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml")
    expected = package / "configs" / "hello.yaml"
    assert find_config("demo/hello") == expected
    assert find_config("hello") == expected
    assert [e.qualified_name for e in shipped_configs()] == ["demo/hello"]


def test_a_file_that_exists_wins_over_a_registered_name(
    fresh_registry: Registry, package: Path
) -> None:
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml")
    Path("hello").write_text("a: 1\n")
    assert find_config("hello") == Path("hello")
    Path("demo").mkdir()
    Path("demo", "hello").mkdir()  # a folder is never a config: it does not shadow the name
    assert find_config("demo/hello") == package / "configs" / "hello.yaml"


def test_an_absolute_path_can_be_registered_for_a_file_outside_any_package(
    fresh_registry: Registry, package: Path, tmp_path: Path
) -> None:
    file = tmp_path / "job.yaml"
    file.write_text(HELLO)
    register(fresh_registry, "job", file)
    register(fresh_registry, "relative", Path("job.yaml"))
    assert find_config("demo/job") == file
    with pytest.raises(ConfigError, match="expected 'package:path/in/package' or an absolute"):
        find_config("demo/relative")


def test_a_registered_path_is_listed_by_its_text(fresh_registry: Registry, package: Path) -> None:
    file = package / "configs" / "hello.yaml"
    register(fresh_registry, "hello", file)
    [entry] = shipped_configs()
    assert entry.target == str(file)  # corelib list's TARGET column, not 'pathlib:PosixPath'


def test_a_name_that_is_neither_a_file_nor_registered_lists_close_matches(
    fresh_registry: Registry, package: Path
) -> None:
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml")
    Path("help.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError) as caught:
        find_config("demo/helo")
    assert "demo/helo: no such config file, and no registered config" in str(caught.value)
    assert "did you mean 'demo/hello'" in str(caught.value)
    with pytest.raises(ConfigError, match=r"did you mean 'help\.yaml'"):
        find_config("helpp.yaml")


@pytest.mark.parametrize("spec", ["a" * 5000, "a/" * 3000 + "x.yaml"])
def test_a_name_too_long_for_the_file_system_is_a_short_config_error(
    fresh_registry: Registry, package: Path, spec: str
) -> None:
    with pytest.raises(ConfigError, match="no such config file") as caught:
        find_config(spec)
    assert len(str(caught.value)) < 500


def test_an_ambiguous_short_name_asks_for_a_qualified_one(
    fresh_registry: Registry, package: Path
) -> None:
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml", plugin="one")
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml", plugin="two")
    with pytest.raises(ConfigError, match="ambiguous: use one of 'one/hello', 'two/hello'"):
        find_config("hello")
    assert find_config("two/hello") == package / "configs" / "hello.yaml"


def test_a_component_name_is_not_a_config(fresh_registry: Registry, package: Path) -> None:
    fresh_registry.bind("demo", "plugin 'demo'").register("models", "net", "shipdemo:Net")
    with pytest.raises(ConfigError, match="'demo/net' is a component \\(group 'models'\\)"):
        find_config("demo/net")


@pytest.mark.parametrize(
    "ref", ["shipdemo:../escape.yaml", "shipdemo:configs/../../escape.yaml", "shipdemo:/etc/x"]
)
def test_a_ref_must_stay_inside_its_package(
    fresh_registry: Registry, package: Path, ref: str
) -> None:
    (package.parent / "escape.yaml").write_text(HELLO)
    register(fresh_registry, "escape", ref)
    with pytest.raises(ConfigError, match="must name a file inside the package"):
        find_config("escape")


def test_a_missing_file_or_package_names_the_config_and_its_plugin(
    fresh_registry: Registry, package: Path
) -> None:
    register(fresh_registry, "gone", "shipdemo:configs/gone.yaml")
    register(fresh_registry, "nopkg", "no_such_package_xyz:configs/a.yaml")
    with pytest.raises(ConfigError, match=r"config 'demo/gone' \(plugin 'demo'\): .* not a file"):
        find_config("gone")
    entry = next(e for e in shipped_configs() if e.name == "nopkg")
    with pytest.raises(ConfigError, match="cannot import package 'no_such_package_xyz'"):
        config_file(entry)


# -- cp ---------------------------------------------------------------------------------------


def test_cp_copies_into_a_folder_or_to_a_file_and_refuses_to_overwrite(
    fresh_registry: Registry, package: Path, tmp_path: Path
) -> None:
    register(fresh_registry, "hello", "shipdemo:configs/hello.yaml")
    (package / "configs" / "hello.yaml").chmod(0o444)  # as read-only site-packages may be
    folder = tmp_path / "mine"
    folder.mkdir()
    copy_config("hello", str(folder))
    copied = folder / "hello.yaml"
    assert copied.read_text() == HELLO
    assert copied.stat().st_mode & 0o200  # the copy is the user's to edit
    copied.write_text("edited: true\n")
    with pytest.raises(ConfigError, match=r"already exist.*--force overwrites"):
        copy_config("hello", str(folder))
    assert copied.read_text() == "edited: true\n"
    copy_config("hello", str(folder), force=True)
    assert copied.read_text() == HELLO
    (tmp_path / "link.yaml").symlink_to(tmp_path / "nowhere")  # a dangling link is taken too
    with pytest.raises(ConfigError, match=r"link\.yaml already exist"):
        copy_config("hello", str(tmp_path / "link.yaml"))
    assert not (tmp_path / "nowhere").exists()
    copy_config("demo/hello", str(tmp_path / "renamed.yml"))
    assert (tmp_path / "renamed.yml").read_text() == HELLO
    with pytest.raises(ConfigError, match=r"must end in \.yaml"):
        copy_config("hello", str(tmp_path / "hello.json"))


def test_cp_of_a_python_config_brings_the_siblings_it_imports(
    fresh_registry: Registry, package: Path, tmp_path: Path
) -> None:
    configs = package / "configs"
    (configs / "common.py").write_text("from corelib import L\nmodel = L('demo/net')(width=2)\n")
    (configs / "job.py").write_text(
        "from .common import model\nfrom corelib import L\nmain = L('demo/job')(model=model)\n"
    )
    (configs / "unrelated.py").write_text("x = 1\n")
    register(fresh_registry, "job", "shipdemo:configs/job.py")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "common.py").write_text("# mine\n")
    with pytest.raises(ConfigError, match=r"common\.py already exist"):
        copy_config("job", str(dest))
    assert not (dest / "job.py").exists()  # nothing is written when anything would be lost
    pairs = copy_config("job", str(dest), force=True)
    assert sorted(copy.name for _, copy in pairs) == ["common.py", "job.py"]
    assert to_dict(load_config(dest / "job.py")) == to_dict(load_config(configs / "job.py"))


# -- the command line -------------------------------------------------------------------------


def test_list_configs_shows_name_plugin_and_file_of_the_ddp_configs(tmp_path: Path) -> None:
    done = run_corelib(tmp_path, "list", "configs", plugins=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PLUGIN", "FILE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    for strategy in STRATEGIES:
        file = REPO / "plugins" / "ddp" / "configs" / f"train_{strategy}.yaml"
        assert rows[f"ddp/train_{strategy}"] == ["ddp", str(file)]


def test_an_unknown_config_name_exits_2_with_close_matches(tmp_path: Path) -> None:
    done = run_corelib(tmp_path, "run", "ddp/train_dpp", plugins=True)
    assert done.returncode == 2
    assert done.stderr.startswith("corelib: error: ddp/train_dpp: no such config file")
    assert "did you mean 'ddp/train_ddp'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_shipped_training_config_checks_clean_by_name(tmp_path: Path, strategy: str) -> None:
    done = run_corelib(
        tmp_path, "check", f"ddp/train_{strategy}", "--allow-import", "torch.optim", plugins=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith(f"train_{strategy}.yaml: no problems found\n")


def test_a_shipped_yaml_config_runs_in_safe_mode_like_any_yaml_file(tmp_path: Path) -> None:
    done = run_corelib(tmp_path, "check", "ddp/train_single", plugins=True)
    assert done.returncode == 2
    assert "'torch.optim.AdamW'" in done.stdout and "not allowed" in done.stdout


def test_show_and_cp_take_a_shipped_name(tmp_path: Path) -> None:
    shown = run_corelib(tmp_path, "show", "train_single", "max_steps=2", plugins=True)
    assert shown.returncode == 0, shown.stderr
    assert "max_steps: 2\n" in shown.stdout and "_target_: ddp/single" in shown.stdout
    copied = run_corelib(tmp_path, "cp", "ddp/train_single", ".", plugins=True)
    assert copied.returncode == 0, copied.stderr
    original = REPO / "plugins" / "ddp" / "configs" / "train_single.yaml"
    assert (tmp_path / "train_single.yaml").read_text() == original.read_text()
    again = run_corelib(tmp_path, "cp", "ddp/train_single", ".", plugins=True)
    assert again.returncode == 2
    assert again.stderr == (
        "corelib: error: cp: train_single.yaml already exist(s); --force overwrites\n"
    )
    # The copy is a file like any other: it wins over the shipped name from now on.
    shown = run_corelib(tmp_path, "show", "train_single.yaml", plugins=True)
    assert shown.stdout == run_corelib(tmp_path, "show", "ddp/train_single", plugins=True).stdout


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_the_shipped_ddp_config_trains_on_two_processes_by_name(tmp_path: Path) -> None:
    done = run_corelib(
        tmp_path,
        "run",
        "ddp/train_ddp",
        "--nproc-per-node",
        "2",
        "--allow-import",
        "torch.optim",
        plugins=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("{'step': 5.0, 'train/loss': ")


def test_the_examples_plugin_registers_the_main_job_where_the_checkout_has_it(
    fresh_registry: Registry,
) -> None:
    from plugins import examples

    examples.corelib_register(fresh_registry.bind("examples", "plugin 'examples'"))
    assert find_config("examples/reasoning") == REPO / "examples" / "reasoning" / "config.py"


# -- a real install ---------------------------------------------------------------------------

PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "corelib-shipdemo"
version = "0.1.0"

[project.entry-points."corelib.plugins"]
shipdemo = "corelib_shipdemo"

[tool.setuptools]
packages = ["corelib_shipdemo"]

[tool.setuptools.package-data]
corelib_shipdemo = ["configs/*.yaml"]
"""
PLUGIN_MODULE = """\
from corelib import hookimpl


def shout(text: str) -> str:
    return text.upper() + "!"


@hookimpl
def corelib_register(registry):
    registry.register("examples", "shout", "corelib_shipdemo:shout")
    registry.register("configs", "hello", "corelib_shipdemo:configs/hello.yaml")
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_pip_installed_plugin_ships_a_config_that_runs_by_name(tmp_path: Path) -> None:
    project = tmp_path / "shipdemo"
    (project / "corelib_shipdemo" / "configs").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (project / "corelib_shipdemo" / "__init__.py").write_text(PLUGIN_MODULE)
    (project / "corelib_shipdemo" / "configs" / "hello.yaml").write_text(
        "_target_: shipdemo/shout\ntext: hello\n"
    )
    venv = make_venv(tmp_path, project)
    shutil.rmtree(project)  # what runs now is the installed copy: package data, not the source
    work = tmp_path / "work"
    work.mkdir()

    listed = run_installed(venv, "list", "configs", cwd=work)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows["shipdemo/hello"][0] == "shipdemo"
    assert rows["shipdemo/hello"][1].endswith("site-packages/corelib_shipdemo/configs/hello.yaml")
    main_job = REPO / "examples" / "reasoning" / "config.py"
    assert rows["examples/reasoning"] == ["examples", str(main_job)]  # the checkout's main job

    ran = run_installed(venv, "run", "hello", "text=shipped", cwd=work)
    assert (ran.returncode, ran.stdout) == (0, "SHIPPED!\n"), ran.stderr

    copied = run_installed(venv, "cp", "hello", ".", cwd=work)
    assert copied.returncode == 0, copied.stderr
    assert run_installed(venv, "run", "hello.yaml", cwd=work).stdout == "HELLO!\n"

    graph = run_installed(venv, "show", "examples/reasoning", "--graph", cwd=work, timeout=120)
    assert graph.returncode == 0, graph.stderr
    assert graph.stdout.startswith("flowchart TD\n")
    assert '  n0["(root)"]\n' in graph.stdout
