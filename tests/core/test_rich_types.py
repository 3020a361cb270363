"""Typed values beyond attrs: dataclasses, TypedDicts, pydantic models, Literal, Enum, unions.

``instantiate`` structures plain values into them (cattrs for dataclasses, ``model_validate``
for pydantic models) and ``check`` validates them without building; both name the exact path.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typing_extensions
from typed_app import Endpoint, Mode, OptimSettings, TrainerSettings

from corelib import InstantiationError, check, instantiate, load_config, save_config

TRAIN = "typed_app.train"


def built(**kwargs: Any) -> dict[str, Any]:
    """What ``train`` was given, built from a config ``{"t": {_target_: train, **kwargs}}``."""
    return instantiate({"t": {"_target_": TRAIN, **kwargs}})["t"]


def failure(**kwargs: Any) -> tuple[InstantiationError, list[str]]:
    """The error instantiate raises, and the problems check finds, for the same config."""
    cfg = {"t": {"_target_": TRAIN, **kwargs}}
    problems = [f"{p.path}: {p.message}" for p in check(cfg)]
    with pytest.raises(InstantiationError) as info:
        instantiate(cfg)
    return info.value, problems


# --- dataclasses ---------------------------------------------------------------------------


def test_a_plain_dict_becomes_the_dataclass_nested_ones_too() -> None:
    settings = {"opt": {"lr": 1, "betas": [0.8, 0.9]}, "precision": "bf16"}
    assert built(settings=settings)["settings"] == TrainerSettings(
        OptimSettings(lr=1.0, betas=(0.8, 0.9)), precision="bf16"
    )
    assert check({"_target_": TRAIN, "settings": settings}) == []


def test_a_wrong_item_deep_in_a_dataclass_is_named_exactly() -> None:
    error, problems = failure(settings={"opt": {"lr": 1e-3, "betas": [0.9, "high"]}})
    assert error.path == "t.settings.opt.betas[1]"
    assert "expected float, got str 'high'" in str(error)
    assert problems == ["t.settings.opt.betas[1]: expected float, got str 'high'"]


def test_dataclass_fields_are_strict_like_parameters() -> None:
    error, problems = failure(settings={"opt": {"lr": "0.1"}})
    assert error.path == "t.settings.opt.lr"
    assert "expected float, got str '0.1'" in str(error)
    assert problems == ["t.settings.opt.lr: expected float, got str '0.1'"]


def test_unknown_and_missing_dataclass_fields() -> None:
    error, problems = failure(settings={"opt": {"lr": 1.0}, "precison": "bf16"})
    assert error.path == "t.settings"
    message = "unknown field(s) 'precison' (did you mean 'precision'?) for TrainerSettings"
    assert message in str(error)
    assert problems[0].startswith(f"t.settings: {message}")

    error, problems = failure(settings={"precision": "bf16"})
    assert error.path == "t.settings.opt"
    assert "required field missing: TrainerSettings needs 'opt'" in str(error)
    assert problems == ["t.settings.opt: required field missing: TrainerSettings needs 'opt'"]


def test_an_instance_that_fits_is_passed_unchanged() -> None:
    settings = TrainerSettings(OptimSettings(lr=0.1))
    assert built(settings=settings)["settings"] is settings


# --- Literal -------------------------------------------------------------------------------


def test_check_catches_a_misspelled_literal_with_the_allowed_values_and_a_close_match() -> None:
    [problem] = check({"trainer": {"_target_": TRAIN, "precision": "bf17"}})
    assert problem.path == "trainer.precision"
    assert "got str 'bf17'" in problem.message
    assert "one of '32', 'bf16'; did you mean 'bf16'?" in problem.message


def test_instantiate_refuses_the_literal_too_and_accepts_the_allowed_ones() -> None:
    error, _ = failure(settings={"opt": {"lr": 1.0}, "precision": "bf17"})
    assert error.path == "t.settings.precision"
    assert "did you mean 'bf16'?" in str(error)
    assert built(precision="bf16")["precision"] == "bf16"


def test_a_literal_does_not_accept_an_equal_value_of_another_type() -> None:
    _, problems = failure(precision=32)  # "32" is allowed, the int 32 is not
    assert problems == [
        "t.precision: expected Literal['32', 'bf16'], got int 32 (one of '32', 'bf16')"
    ]


def test_a_list_of_literals_names_the_item() -> None:
    error, problems = failure(precisions=["32", "bf61"])
    assert error.path == "t.precisions[1]"
    assert [p.split(":")[0] for p in problems] == ["t.precisions[1]"]


# --- Enum ----------------------------------------------------------------------------------


def test_an_enum_is_structured_from_its_value_or_its_name() -> None:
    assert built(modes={"a": "fast", "b": "SAFE"})["modes"] == {"a": Mode.FAST, "b": Mode.SAFE}
    assert built(settings={"opt": {"lr": 1.0}, "modes": ["safe"]})["settings"].modes == [Mode.SAFE]


def test_a_wrong_enum_value_in_a_dict_names_its_key_and_the_members() -> None:
    error, problems = failure(modes={"a": "fast", "b": "fsat"})
    assert error.path == "t.modes.b"
    assert "expected Mode, got str 'fsat' (one of 'fast', 'safe'; did you mean 'fast'?)" in str(
        error
    )
    assert [p.split(":")[0] for p in problems] == ["t.modes.b"]


# --- TypedDict -----------------------------------------------------------------------------


def test_a_typeddict_stays_a_dict_with_its_values_checked() -> None:
    assert built(limits={"steps": 3})["limits"] == {"steps": 3}
    assert built(limits={"steps": 3, "warmup": 1})["limits"] == {"steps": 3, "warmup": 1}
    assert built(tags={"name": "a"})["tags"] == {"name": "a"}  # total=False, name Required


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"warmup": 1}, "t.limits.steps", "required field missing: Limits needs 'steps'"),
        ({"steps": "3"}, "t.limits.steps", "expected int, got str '3'"),
        ({"steps": 3, "warmpu": 1}, "t.limits", "unknown field(s) 'warmpu' (did you mean"),
    ],
)
def test_typeddict_errors(value: dict[str, Any], path: str, message: str) -> None:
    error, problems = failure(limits=value)
    assert error.path == path and message in str(error)
    assert [p.split(":")[0] for p in problems] == [path]


def test_required_in_a_non_total_typeddict_is_required() -> None:
    error, problems = failure(tags={"owner": "me"})
    assert error.path == "t.tags.name"
    assert problems == ["t.tags.name: required field missing: Tags needs 'name'"]


# --- unions --------------------------------------------------------------------------------


def test_optional_accepts_none_and_reports_what_is_wrong_inside_the_other_member() -> None:
    assert built(limits=None)["limits"] is None
    error, _ = failure(limits={"steps": 1.5})
    assert error.path == "t.limits.steps"
    assert "expected int, got float 1.5" in str(error)


# --- pydantic (optional) -------------------------------------------------------------------


def test_a_pydantic_model_is_built_by_model_validate() -> None:
    from typed_app_pydantic import Scheduler

    cfg = {"s": {"_target_": "typed_app_pydantic.schedule", "scheduler": {"kind": "linear"}}}
    assert instantiate(cfg)["s"] == Scheduler(kind="linear")
    assert check(cfg) == []


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"kind": "cosin"}, "s.scheduler.kind", "Input should be 'cosine' or 'linear', got str"),
        ({"peaks": [1.0, "x"]}, "s.scheduler.peaks[1]", "got str 'x'"),
        ({"kindd": "cosine"}, "s.scheduler", "unknown field(s) 'kindd' (did you mean 'kind'?)"),
    ],
)
def test_pydantic_errors_name_the_exact_path(
    value: dict[str, Any], path: str, message: str
) -> None:
    cfg = {"s": {"_target_": "typed_app_pydantic.schedule", "scheduler": value}}
    with pytest.raises(InstantiationError) as info:
        instantiate(cfg)
    assert info.value.path == path and message in str(info.value)


def test_check_finds_what_pydantic_would_refuse_and_leaves_the_rest_to_it() -> None:
    def problems(value: dict[str, Any]) -> list[str]:
        cfg = {"p": {"_target_": "typed_app_pydantic.plan", "plan": value}}
        return [f"{p.path}: {p.message}" for p in check(cfg)]

    [unknown] = problems({"scheduler": {"kindd": "cosine"}})  # extra="forbid", nested
    assert unknown.startswith("p.plan.scheduler: unknown field(s) 'kindd' (did you mean 'kind'?)")
    [literal] = problems({"scheduler": {"kind": "cosin"}})
    assert literal.startswith("p.plan.scheduler.kind: expected Literal['cosine', 'linear']")
    assert "did you mean 'cosine'?" in literal
    # pydantic accepts these when building ("3" for an int in lax mode; Plan ignores extra keys)
    assert problems({"scheduler": {"warmup": "3"}, "extra": 1}) == []
    built = instantiate(
        {"_target_": "typed_app_pydantic.plan", "plan": {"scheduler": {"warmup": "3"}}}
    )
    assert built.scheduler.warmup == 3


def test_corelib_does_not_import_pydantic_for_annotations_that_are_not_pydantic_models() -> None:
    support = Path(__file__).parent / "support"
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(support)!r})\n"
        "from corelib import check, instantiate\n"
        "cfg = {'_target_': 'typed_app.train', 'settings': {'opt': {'lr': 1.0}},\n"
        "       'limits': {'steps': 1}, 'modes': {'a': 'fast'}, 'precision': 'bf16'}\n"
        "assert check(cfg) == [], check(cfg)\n"
        "instantiate(cfg)\n"
        "assert check({**cfg, 'precision': 'x'})\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# --- every format, and safe mode -----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".py", ".yaml", ".json", ".toml"])
def test_typed_values_from_every_format(tmp_path: Path, suffix: str) -> None:
    settings = {"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "precision": "bf17"}
    file = tmp_path / f"typed{suffix}"
    if suffix == ".py":
        file.write_text(f"trainer = {{'_target_': {TRAIN!r}, 'settings': {settings!r}}}\n")
    else:
        save_config({"trainer": {"_target_": TRAIN, "settings": settings}}, file)
    cfg = load_config(file)
    [problem] = check(cfg)
    assert problem.path == "trainer.settings.precision"
    cfg["trainer"]["settings"]["precision"] = "bf16"
    result = instantiate(cfg)["trainer"]["settings"]
    assert result == TrainerSettings(OptimSettings(0.1, (0.9, 0.99)), precision="bf16")


@pytest.mark.parametrize(
    ("target", "parameter"),
    [("typed_app_pydantic.login", "credentials"), ("typed_app.unlock", "secret")],
)
def test_trusted_only_fields_of_pydantic_models_and_typeddicts_too(
    target: str, parameter: str
) -> None:
    cfg = {"_target_": target, parameter: {"url": "http://x", "key_env": "HOME"}}
    module = target.partition(".")[0]
    [problem] = check(cfg, allow=[module])
    assert (problem.path, "trusted-only" in problem.message) == (f"{parameter}.key_env", True)
    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(cfg, _allow_=[module])


def test_an_untrusted_file_cannot_set_a_trusted_only_dataclass_field() -> None:
    cfg = {
        "c": {
            "_target_": "typed_app.connect",
            "endpoint": {"url": "http://x", "api_key_env": "HOME"},
        }
    }
    [problem] = check(cfg, allow=["typed_app"])
    assert problem.path == "c.endpoint.api_key_env"
    assert "trusted-only" in problem.message
    with pytest.raises(InstantiationError, match="trusted-only"):
        instantiate(cfg, _allow_=["typed_app"])
    trusted = instantiate(cfg, _allow_=["typed_app"], _trusted_=["c.endpoint.api_key_env"])
    assert trusted["c"] == Endpoint("http://x", "HOME")


def test_a_dataclass_that_refuses_its_values_is_reported_at_the_parameter() -> None:
    cfg = {"p": {"_target_": "typed_app.positive", "value": {"n": -1}}}
    assert check(cfg) == []  # check runs no __post_init__: it cannot know
    with pytest.raises(InstantiationError) as info:
        instantiate(cfg)
    assert info.value.path == "p.value"
    assert "ValueError: n must be positive, got -1" in str(info.value)


class Window(typing_extensions.TypedDict):  # not typing.TypedDict on Python 3.11
    width: int


def show(window: Window) -> Window:
    return window


def test_a_typing_extensions_typeddict_is_checked_too() -> None:
    assert instantiate({"_target_": show, "window": {"width": 3}}) == {"width": 3}
    [problem] = check({"_target_": show, "window": {"width": "3"}})
    assert (problem.path, problem.message) == ("window.width", "expected int, got str '3'")


def test_a_pydantic_model_as_the_target_is_checked_and_its_refusal_is_a_config_error() -> None:
    cfg = {"s": {"_target_": "typed_app_pydantic.Scheduler", "kind": "cosin"}}
    [problem] = check(cfg)
    assert problem.path == "s.kind" and "did you mean 'cosine'?" in problem.message
    with pytest.raises(InstantiationError) as info:
        instantiate(cfg)
    assert (info.value.path, info.value.user_error) == ("s.kind", False)  # exit 2, not 1
    assert "Input should be 'cosine' or 'linear', got str 'cosin'" in str(info.value)
    nested = {"_target_": "typed_app_pydantic.Plan", "scheduler": {"kind": "x"}}
    assert [p.path for p in check(nested)] == ["scheduler.kind"]
