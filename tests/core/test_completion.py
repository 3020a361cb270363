"""Shell completion: ``corelib completion bash|zsh|fish`` and the hidden ``corelib __complete``.

``corelib __complete WORD...`` prints the candidates for the last word, one a line; the shell
scripts only pass the words and read the lines back. The bash script is run for real, in a plain
``bash --norc`` (no bash-completion package), by setting ``COMP_WORDS``/``COMP_CWORD`` and
calling its function. Completing a config's keys reads a data file only: nothing it names is
imported, and a ``.py`` config is not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from corelib._cli import main

if TYPE_CHECKING:
    from conftest import FakeDists

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
trainer:
  optimizer: {lr: 0.1, algo: SGD}
  epochs: 3
  layers: [8, {width: 2}]
  callbacks: []
"odd key": 1
"""

GREETER = """
    from corelib import hookimpl

    @hookimpl
    def corelib_register(registry):
        registry.register("examples", "greeter", "string:Template")
"""


def complete(capsys: pytest.CaptureFixture[str], *words: str) -> list[str]:
    assert main(["__complete", *words]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out.splitlines()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: ``cfg.yaml`` (CONFIG), a sub-folder and a file of another type."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "small.toml").write_text("a = 1\n")
    (tmp_path / "notes.txt").write_text("not a config\n")
    (tmp_path / ".hidden.yaml").write_text("{}\n")
    return tmp_path


def test_commands_and_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    commands = {"run", "show", "check", "plugins", "list", "describe", "completion"}
    assert commands <= set(complete(capsys, ""))
    assert complete(capsys, "ch") == ["check"]
    assert complete(capsys, "plugins", "") == ["new"]
    assert complete(capsys, "completion", "") == ["bash", "fish", "zsh"]


def test_flags_of_the_command_on_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert complete(capsys, "run", "cfg.yaml", "--allow-") == [
        "--allow-import",
        "--allow-host",
        "--allow-env",
    ]
    assert complete(capsys, "--deb") == ["--debug"]
    assert complete(capsys, "plugins", "new", "x", "--f") == ["--force"]


def test_config_files_and_folders(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert complete(capsys, "run", "") == ["cfg.yaml", "configs/"]
    assert complete(capsys, "check", "configs/") == ["configs/small.toml"]
    assert complete(capsys, "show", ".h") == [".hidden.yaml"]
    assert complete(capsys, "plugins", "new", "x", "--dir", "c") == ["configs/"]


def test_key_paths_of_the_config_one_level_at_a_time(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert complete(capsys, "run", "cfg.yaml", "") == ["trainer."]  # "odd key" cannot be spelled
    assert complete(capsys, "run", "cfg.yaml", "trainer.") == [
        *["trainer.optimizer.", "trainer.epochs=", "trainer.layers.", "trainer.callbacks="]
    ]
    assert complete(capsys, "run", "cfg.yaml", "a=1", "trainer.optimizer.l") == [
        "trainer.optimizer.lr="
    ]
    assert complete(capsys, "show", "cfg.yaml", "trainer.layers.") == [
        *["trainer.layers.0=", "trainer.layers.1."]
    ]
    assert complete(capsys, "check", "cfg.yaml", "--unsafe", "++trainer.e") == ["++trainer.epochs="]
    assert complete(capsys, "run", "cfg.yaml", "~trainer.o") == [
        *["~trainer.optimizer.", "~trainer.optimizer"]
    ]


def test_entry_offers_the_mappings_of_the_config(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert complete(capsys, "run", "cfg.yaml", "--entry", "") == ["trainer", "trainer."]
    assert complete(capsys, "check", "cfg.yaml", "--entry", "trainer.") == ["trainer.optimizer"]


def test_values_are_not_completed_even_when_bash_split_the_word(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert complete(capsys, "run", "cfg.yaml", "trainer.epochs=") == []
    assert complete(capsys, "run", "cfg.yaml", "trainer.epochs", "=") == []  # bash: "=" alone
    assert complete(capsys, "run", "cfg.yaml", "trainer.epochs", "=", "tr") == []


def test_keys_of_a_broken_or_missing_config_are_no_candidates(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "broken.yaml").write_text("a: [1\n")
    assert complete(capsys, "run", "broken.yaml", "") == []
    assert complete(capsys, "run", "missing.yaml", "") == []


def test_completing_keys_imports_nothing_the_config_names_and_runs_no_py_config(
    folder: Path, capsys: pytest.CaptureFixture[str], fake_dists: FakeDists
) -> None:
    marker = folder / "marker"
    module = fake_dists.module(f"open({str(marker)!r}, 'w').write('imported')\nclass Thing: ...\n")
    (folder / "untrusted.yaml").write_text(f"_target_: {module}.Thing\nsize: 1\n")
    (folder / "code.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nsize = 1\n")
    assert complete(capsys, "run", "untrusted.yaml", "s") == ["size="]
    assert complete(capsys, "run", "code.py", "s") == []
    assert not marker.exists()
    assert module not in sys.modules


def test_names_a_shell_would_expand_are_not_offered(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "c$(touch pwned).yaml").write_text("{}\n")
    (folder / "c`id`.json").write_text("{}\n")
    (folder / "c d.yaml").write_text("{}\n")
    (folder / "keys.yaml").write_text('"a;b": 1\n"$(id)": 2\nok: 3\n')
    assert complete(capsys, "run", "c") == ["cfg.yaml", "configs/"]
    assert complete(capsys, "run", "keys.yaml", "") == ["ok="]


def test_registered_names_groups_and_plugins(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_dists.add("greeter-dist", "1.0", {"greeter": GREETER})
    assert complete(capsys, "describe", "gree") == ["greeter/greeter", "greeter"]
    assert "examples" in complete(capsys, "list", "")
    assert complete(capsys, "list", "tr") == ["trainers"]
    assert complete(capsys, "--block-plugin", "g") == ["greeter"]


def test_registered_configs_by_name_and_their_keys(
    fake_dists: FakeDists, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = folder / "shipped" / "train.yaml"
    shipped.parent.mkdir()
    shipped.write_text("trainer: {lr: 0.1}\n")
    plugin = f"""
    from pathlib import Path
    from corelib import hookimpl

    @hookimpl
    def corelib_register(registry):
        registry.register("configs", "train_small", Path({str(shipped)!r}))
    """
    fake_dists.add("shipper-dist", "1.0", {"shipper": plugin})
    assert complete(capsys, "run", "shipper/") == ["shipper/train_small"]
    assert complete(capsys, "run", "train_sm") == ["train_small"]
    assert complete(capsys, "run", "train_small", "trainer.") == ["trainer.lr="]


def test_completion_prints_the_script_for_each_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    assert "complete -F _corelib_complete corelib" in capsys.readouterr().out
    assert main(["completion", "zsh"]) == 0
    assert "compdef _corelib_complete corelib" in capsys.readouterr().out
    assert main(["completion", "fish"]) == 0
    assert "complete -c corelib -f -a '(__corelib_complete)'" in capsys.readouterr().out
    assert main(["completion", "tcsh"]) == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err


def script(shell: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "corelib", "completion", shell],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(180)
def test_the_bash_script_completes_in_plain_bash(fake_dists: FakeDists, folder: Path) -> None:
    fake_dists.add("greeter-dist", "1.0", {"greeter": GREETER})
    lines = textwrap.dedent(
        """\
        corelib() { "$PYTHON" -m corelib "$@"; }
        eval "$(corelib completion bash)"
        complete -p corelib
        comp() {
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
            _corelib_complete; echo "${COMPREPLY[*]}"
        }
        comp corelib r
        comp corelib run ""
        comp corelib run cfg.yaml --unsafe trainer.opt
        comp corelib run cfg.yaml trainer.optimizer.lr =
        comp corelib describe greeter/
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORELIB_")}
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join([str(fake_dists.root), str(REPO)])
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", lines],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "complete -F _corelib_complete corelib",
        "run",
        "cfg.yaml configs/ site/",  # site/: where fake_dists installs
        "trainer.optimizer.",
        "",
        "greeter/greeter",
    ]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_the_zsh_script_is_valid_zsh() -> None:
    check = subprocess.run(["zsh", "-n"], input=script("zsh"), text=True, timeout=30)
    assert check.returncode == 0


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_the_fish_script_is_valid_fish() -> None:
    check = subprocess.run(["fish", "--no-execute"], input=script("fish"), text=True, timeout=30)
    assert check.returncode == 0
