"""``corelib describe NAME --yaml``: a ready-to-edit node that loads back and checks once filled."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _corelib_cli import run_corelib

from corelib import InstantiationError, apply_overrides, check, instantiate, load_config
from corelib._cli import main
from corelib._cli._describe_yaml import describe_yaml
from corelib._docstrings import parameter_docs

if TYPE_CHECKING:
    from conftest import FakeDists

WARMUP = '''
    from __future__ import annotations

    import dataclasses
    import time

    import attrs
    from typing import Annotated, Callable, Literal

    from corelib import Trusted


    class Warmup:
        """Linear learning-rate warmup.

        Longer text that describe leaves out.

        Args:
            steps (int): How many steps the warmup
                lasts. Later sentences are left out.
            start: The first factor.
            mode: How the factor grows.
        """

        def __init__(
            self,
            steps: int,
            start: float = 0.1,
            mode: Literal["linear", "cosine"] = "linear",
            stages: tuple[int, ...] = (1, 2),
            clock: Callable[[], float] = time.monotonic,
            key_env: Annotated[str, Trusted] = "WARMUP_KEY",
            **extra: object,
        ) -> None:
            self.settings = (steps, start, mode, stages, clock, key_env, extra)


    def numpy_style(lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        """Adam, NumPy style.

        Parameters
        ----------
        lr : float
            The learning rate.
        betas : tuple of float
            Averaging coefficients.
        """


    def sphinx_style(lr: float, decay: float = 0.0) -> None:
        """SGD, Sphinx style.

        :param float lr: The learning rate.
        :param decay: Weight decay.
        """


    @dataclasses.dataclass
    class Limits:
        steps: int = dataclasses.field(metadata={"doc": "Stop after this many steps."})
        tags: list[str] = dataclasses.field(default_factory=list)


    @attrs.define
    class Mix:
        ratio: float = 0.5
        """How much of each. Not this."""
        name: str = attrs.field(default="m", metadata={"help": "Its name."})
'''

EXPECTED = """\
# described.Warmup: Linear learning-rate warmup.
# replace each ??? (a required value); a key left out takes its default
_target_: described.Warmup
# steps (int, required): How many steps the warmup lasts.
steps: ???
# start (float): The first factor.
start: 0.1
# mode (Literal['linear', 'cosine']): How the factor grows.
mode: linear
# stages (tuple[int, ...])
stages:
- 1
- 2
# clock (Callable[[], float])
# clock: <built-in function monotonic> (not writable in a file: leave the key out)
# key_env (str) (trusted-only: set it from Python, a .py config or the command line)
# key_env: WARMUP_KEY
# also takes **extra
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "described.py").write_text(textwrap.dedent(WARMUP))
    return tmp_path


def describe(project: Path, *args: str) -> str:
    done = run_corelib(project, "describe", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_node_for_a_documented_class_is_exactly_this(project: Path) -> None:
    assert describe(project, "described.Warmup", "--yaml") == EXPECTED


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_the_node_loads_back_and_checks_once_the_required_values_are_filled(
    project: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(project))
    file = project / f"warmup{suffix}"
    file.write_text(describe(project, "described.Warmup", "--yaml"))
    cfg = load_config(file)
    assert cfg == {"_target_": "described.Warmup", "steps": "???", "start": 0.1} | {
        "mode": "linear",
        "stages": [1, 2],
    }
    [unfilled] = check(cfg, allow=["described"])
    assert (unfilled.path, unfilled.message) == (
        "steps",
        "'???' is a placeholder for a required value: replace it with a value",
    )
    filled = apply_overrides(cfg, ["steps=100"])
    assert check(filled, allow=["described"]) == []
    steps, start, mode, stages, _, key_env, extra = instantiate(filled).settings
    assert (steps, start, mode, stages, key_env, extra) == (
        100,
        0.1,
        "linear",
        (1, 2),
        "WARMUP_KEY",
        {},
    )


def test_instantiate_refuses_an_unfilled_placeholder_by_its_path(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(project))
    with pytest.raises(InstantiationError) as info:
        instantiate({"warmup": {"_target_": "described.Warmup", "steps": "???"}})
    assert info.value.path == "warmup.steps"
    assert "'???' is a placeholder for a required value" in str(info.value)


def test_run_and_check_refuse_the_unfilled_node_with_one_line(project: Path) -> None:
    (project / "warmup.yaml").write_text(describe(project, "described.Warmup", "--yaml"))
    for command in ("check", "run"):
        done = run_corelib(project, command, "warmup.yaml", "--allow-import", "described")
        assert done.returncode == 2, done.stderr
        assert "steps" in done.stdout + done.stderr and "'???' is a placeholder" in (
            done.stdout + done.stderr
        )
        assert "Traceback" not in done.stderr
    done = run_corelib(project, "run", "warmup.yaml", "steps=5", "--allow-import", "described")
    assert done.returncode == 0, done.stderr


def test_numpy_and_sphinx_docstrings_field_metadata_and_attribute_docstrings(project: Path) -> None:
    numpy = describe(project, "described.numpy_style", "--yaml")
    assert "# lr (float, required): The learning rate.\nlr: ???\n" in numpy
    assert (
        "# betas (tuple[float, float]): Averaging coefficients.\nbetas:\n- 0.9\n- 0.999\n" in numpy
    )
    sphinx = describe(project, "described:sphinx_style", "--yaml")
    assert "# decay (float): Weight decay.\ndecay: 0.0\n" in sphinx
    limits = describe(project, "described.Limits", "--yaml")
    assert "# steps (int, required): Stop after this many steps.\nsteps: ???\n" in limits
    assert "# tags (list[str])\ntags: []\n" in limits
    mix = describe(project, "described.Mix", "--yaml")
    assert "# ratio (float): How much of each.\nratio: 0.5\n" in mix  # attribute docstring
    assert "# name (str): Its name.\nname: m\n" in mix


def test_a_registered_name_is_described_under_its_qualified_name(
    fake_dists: FakeDists, capsys: pytest.CaptureFixture[str]
) -> None:
    components = fake_dists.module(textwrap.dedent(WARMUP))
    plugin = f"""
        from corelib.hooks import hookimpl

        @hookimpl
        def corelib_register(registry):
            registry.register("schedulers", "warmup", "{components}:Warmup")
    """
    fake_dists.add("acme-dist", "1.0", {"acme": plugin})
    assert main(["describe", "warmup", "--yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# acme/warmup (group schedulers): Linear learning-rate warmup.\n")
    assert "\n_target_: acme/warmup\n" in out


def test_denied_and_private_import_paths_are_refused_before_anything_is_imported(
    project: Path,
) -> None:
    denied = run_corelib(project, "describe", "xmlrpc.client.ServerProxy", "--yaml")
    assert denied.returncode == 2
    assert denied.stderr.startswith("corelib: error: describe 'xmlrpc.client.ServerProxy': refused")
    assert "denied (on the deny list as 'xmlrpc'" in denied.stderr
    private = run_corelib(project, "describe", "described._secret")
    assert private.returncode == 2 and "private name" in private.stderr
    # what is refused is not imported: a module that would say so when imported stays silent
    (project / "loud.py").write_text("print('IMPORTED')\n")
    hidden = run_corelib(project, "describe", "loud._hidden")
    assert hidden.returncode == 2 and "IMPORTED" not in hidden.stdout
    assert "private name" in hidden.stderr
    unsafe = run_corelib(project, "describe", "loud._hidden", "--unsafe")
    assert unsafe.returncode == 2 and "IMPORTED" in unsafe.stdout  # imported, then not found


def test_an_object_reached_under_an_allowed_looking_name_is_judged_by_what_it_is(
    project: Path,
) -> None:
    (project / "innocent.py").write_text("from os import system as run\n")
    done = run_corelib(project, "describe", "innocent.run", "--yaml")
    assert done.returncode == 2
    assert "refused 'innocent.run': denied" in done.stderr


def test_a_value_is_not_a_target(project: Path) -> None:
    done = run_corelib(project, "describe", "math.pi", "--yaml")
    assert done.returncode == 2
    assert done.stderr == "corelib: error: describe 'math.pi': a float is no target\n"


def test_parameter_docs_reads_the_first_sentence_of_each_style() -> None:
    def google(a: int, b: int) -> None:
        """Summary.

        Args:
            a: First. Second sentence.
            b (int):
                On the next line.
        """

    assert parameter_docs(google) == {"a": "First.", "b": "On the next line."}


def test_an_import_path_of_a_library_class(tmp_path: Path) -> None:
    done = run_corelib(tmp_path, "describe", "torch.optim.AdamW", "--yaml", timeout=120)
    assert done.returncode == 0, done.stderr
    (tmp_path / "adamw.yaml").write_text(done.stdout)
    cfg = load_config(tmp_path / "adamw.yaml")
    assert cfg["_target_"] == "torch.optim.AdamW"
    assert (cfg["params"], cfg["lr"], cfg["betas"]) == ("???", 0.001, [0.9, 0.999])
    lr = "\n# lr (float | torch.Tensor): learning rate (default: 1e-3).\nlr: 0.001\n"
    assert lr in done.stdout


def odd_defaults(
    spec: dict = {"_import_": "os.system"},  # noqa: B006 - never mutated
    many: tuple[int, ...] = tuple(range(10_000)),
    mark: str = "???",
) -> None:
    """Defaults that a file must not hold as written."""


def test_defaults_that_would_change_meaning_or_flood_the_file_are_comments(
    tmp_path: Path,
) -> None:
    text = describe_yaml(odd_defaults, "test_describe_yaml.odd_defaults", "odd_defaults")
    note = "(not writable in a file: leave the key out)"
    assert f"# spec: {{'_import_': 'os.system'}} {note}" in text
    assert f"# many: (0, 1, 2, 3, 4, 5, 6, 7, ...) {note}" in text
    assert f"# mark: '???' {note}" in text
    (tmp_path / "odd.yaml").write_text(text)
    assert load_config(tmp_path / "odd.yaml") == {"_target_": "test_describe_yaml.odd_defaults"}
