"""apply_overrides: the grammar, YAML 1.2 values, copy-on-write, shared nodes, located errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from my_app import Block, Net, Opt, Optimizer, Trainer, params_of

from corelib import ConfigError, L, LazyConfig, apply_overrides, instantiate


def make_cfg() -> LazyConfig:
    return LazyConfig(
        trainer=L(Trainer)(optimizer=L(Optimizer)(lr=0.01, algo="SGD"), seed=0),
        model=LazyConfig(layers=[LazyConfig(width=8), LazyConfig(width=16)], name="net"),
        untouched=LazyConfig(deep=LazyConfig(value=1)),
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.optimizer.lr=1e-3", 0.001),
        ("trainer.optimizer.lr=3", 3),
        ("trainer.optimizer.lr=yes", "yes"),
        ("trainer.optimizer.lr=null", None),
        ("trainer.optimizer.lr=", ""),
        ("trainer.optimizer.lr='1e-3'", "1e-3"),
        ("trainer.optimizer.lr=a=b", "a=b"),
        ("trainer.optimizer.lr=[1, 2.5, x]", [1, 2.5, "x"]),
        ("trainer.optimizer.lr={a: 1, b: [on]}", {"a": 1, "b": ["on"]}),
    ],
)
def test_values_parse_as_yaml_1_2(override: str, expected: Any) -> None:
    out = apply_overrides(make_cfg(), [override])
    assert out.trainer.optimizer.lr == expected
    assert type(out.trainer.optimizer.lr) is type(expected) or isinstance(expected, dict)


def test_flow_mappings_become_lazy_configs() -> None:
    out = apply_overrides(make_cfg(), ["trainer.optimizer={_target_: my_app.Optimizer, lr: 2}"])
    assert isinstance(out.trainer.optimizer, LazyConfig)
    assert instantiate(out.trainer) == Trainer(optimizer=Optimizer(lr=2), seed=0)


def test_input_is_unchanged_and_only_the_edited_spine_is_copied() -> None:
    cfg = make_cfg()
    before = copy.deepcopy(cfg)
    out = apply_overrides(cfg, ["trainer.optimizer.lr=0.5", "model.layers.1.width=32"])
    assert cfg == before
    assert out.trainer.optimizer.lr == 0.5 and out.model.layers[1].width == 32
    assert out is not cfg and out.trainer is not cfg.trainer
    assert out.untouched is cfg.untouched  # shared, not copied
    assert out.model.layers[0] is cfg.model.layers[0]
    assert out.model.layers[1] is not cfg.model.layers[1]
    assert type(out) is LazyConfig and type(out.trainer.optimizer) is LazyConfig


def test_list_items_by_dot_or_brackets() -> None:
    out = apply_overrides(make_cfg(), ["model.layers.0.width=64", "model.layers[1].width=65"])
    assert [layer.width for layer in out.model.layers] == [64, 65]


def test_add_with_plus_creates_missing_parents_and_refuses_existing_keys() -> None:
    out = apply_overrides(make_cfg(), ["+trainer.extra.depth=2"])
    assert out.trainer.extra == {"depth": 2} and isinstance(out.trainer.extra, LazyConfig)
    with pytest.raises(ConfigError, match=r"'\+trainer\.seed=1'.*already exists.*drop the '\+'"):
        apply_overrides(make_cfg(), ["+trainer.seed=1"])


def test_double_plus_sets_or_adds() -> None:
    out = apply_overrides(make_cfg(), ["++trainer.seed=5", "++trainer.new=1"])
    assert out.trainer.seed == 5 and out.trainer.new == 1


def test_delete_keys_and_list_items() -> None:
    out = apply_overrides(make_cfg(), ["~trainer.seed", "~model.layers.0"])
    assert "seed" not in out.trainer
    assert out.model.layers == [{"width": 16}]
    assert instantiate(out.trainer) == Trainer(optimizer=Optimizer(lr=0.01))


def test_target_override_builds_the_new_target() -> None:
    cfg = LazyConfig(model=L(Net)(width=3))
    out = apply_overrides(cfg, ["model._target_=my_app.Block", "+model.dropout=0.5"])
    assert instantiate(out.model) == Block(width=3, dropout=0.5)
    assert instantiate(cfg.model) == Net(width=3)


def test_editing_inside_a_shared_node_edits_it_on_every_path() -> None:
    model = L(Net)(width=4)
    cfg = L(Opt)(params=L(params_of)(model=model), model=model)
    out = apply_overrides(cfg, ["model.width=64"])
    assert out.params.model is out.model and out.model.width == 64
    assert cfg.model.width == 4 and cfg.params.model is cfg.model
    built = instantiate(out)
    assert built.params == [64] and built.model == Net(width=64)


def test_replacing_one_reference_to_a_shared_node_leaves_the_others() -> None:
    model = L(Net)(width=4)
    cfg = L(Opt)(params=L(params_of)(model=model), model=model)
    out = apply_overrides(cfg, ["model={_target_: my_app.Net, width: 9}", "params.model.width=5"])
    assert out.model.width == 9 and out.params.model.width == 5
    assert cfg.model.width == 4


def test_digit_segments_find_string_or_int_dict_keys() -> None:
    cfg = LazyConfig(table={0: "int key", "1": "str key"})
    out = apply_overrides(cfg, ["table.0=a", "table[1]=b"])
    assert out.table == {0: "a", "1": "b"}


def test_a_tuple_on_the_path_becomes_a_list_and_the_input_tuple_is_kept() -> None:
    cfg = LazyConfig(callbacks=(LazyConfig(every=1),))
    out = apply_overrides(cfg, ["callbacks.0.every=5"])
    assert out.callbacks == [{"every": 5}] and cfg.callbacks == ({"every": 1},)


def test_no_overrides_returns_the_config() -> None:
    cfg = make_cfg()
    assert apply_overrides(cfg, []) is cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.optimzer.lr=1",
            r"unknown key 'trainer\.optimzer'; did you mean 'trainer\.optimizer'",
        ),
        (
            "trainer.sed=1",
            r"did you mean 'trainer\.seed'\? \(use '\+trainer\.sed=\.\.\.' to add it\)",
        ),
        ("trainer.zzzzzz=1", r"keys there: _target_, optimizer, seed"),
        ("~trainer.sed", r"unknown key 'trainer\.sed'; did you mean 'trainer\.seed'\?$"),
        ("model.layers.5.width=1", r"item 5 is out of range for 'model\.layers' \(2 items\)"),
        ("model.layers.first.width=1", r"'model\.layers' is a list; expected an item number"),
        ("model.name.x=1", r"'model\.name' is a str \('net'\), not a mapping or a list"),
        ("trainer.seed.x=1", r"'trainer\.seed' is an int \(\d+\), not a mapping or a list"),
        ("trainer.seed", r"malformed override 'trainer\.seed': expected KEY=VALUE"),
        ("~trainer.seed=1", r"malformed override '~trainer\.seed=1': '~' deletes a key"),
        ("trainer..seed=1", r"malformed override 'trainer\.\.seed=1': bad key path .* position 8"),
        ("=1", r"malformed override '=1': empty key path"),
        ("trainer.seed=[1, 2", r"malformed override 'trainer\.seed=\[1, 2'.*not a YAML scalar"),
        ("trainer.seed=- 1", r"block collection"),
        ("+model.layers.2={width: 1}", r"out of range.*replaced whole"),
        (  # a long key is cut in the path, but a hint to copy spells it exactly
            f"trainer.{'s' * 60}=1",
            rf"unknown key 'trainer\.{'s' * 40}…\[\+20 chars\]'.*"
            rf"\(use '\+trainer\.{'s' * 60}=\.\.\.' to add it\)$",
        ),
        (f"trainer.{'s' * 300}=1", rf"unknown key 'trainer\.{'s' * 40}…\[\+260 chars\]'; [^(]*$"),
    ],
)
def test_bad_overrides_quote_the_override_and_say_what_is_wrong(
    override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(make_cfg(), [override])


def test_a_config_with_a_cycle_is_an_error() -> None:
    cfg = LazyConfig(a=LazyConfig())
    cfg.a.back = cfg
    with pytest.raises(ConfigError, match="cycle"):
        apply_overrides(cfg, ["a.x=1"])
