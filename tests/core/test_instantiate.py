"""instantiate: the seed example, special keys, sharing, cycles, errors with paths."""

import copy
import functools
import json

import my_app
import pytest
import yaml
from my_app import Exploding, Net, Opt, Optimizer, Trainer, params_of

from corelib import InstantiationError, L, check, instantiate, to_dict

SEED_DICT = {
    "_target_": "my_app.Trainer",
    "optimizer": {"_target_": "my_app.Optimizer", "lr": 0.01, "algo": "SGD"},
}


def seed_cfg():
    return L(Trainer)(optimizer=L(Optimizer)(lr=0.01, algo="SGD"))


def test_seed_example_to_dict_is_exact():
    assert to_dict(seed_cfg()) == SEED_DICT


def test_seed_example_builds_the_same_objects_from_code_yaml_and_json():
    expected = Trainer(optimizer=Optimizer(lr=0.01, algo="SGD"))
    assert instantiate(seed_cfg()) == expected
    assert instantiate(yaml.safe_load(yaml.safe_dump(SEED_DICT))) == expected
    assert instantiate(json.loads(json.dumps(SEED_DICT))) == expected


def test_recursion_through_dicts_lists_and_tuples():
    built = instantiate({"nets": [L(Net)(width=1), (L(Net)(width=2),)], "plain": {"k": L(Net)()}})
    assert built == {"nets": [Net(1), (Net(2),)], "plain": {"k": Net(8)}}
    assert type(built["nets"][1]) is tuple


def test_targets_receive_plain_containers():
    args, kwargs = instantiate(L(my_app.collect)(L(dict)(a=1), items=[{"x": 1}]))
    assert type(kwargs["items"]) is list and type(kwargs["items"][0]) is dict
    assert args == ({"a": 1},)


def test_args_partial_and_root_overrides():
    assert instantiate(L("my_app.collect")(1, 2, k=3)) == ((1, 2), {"k": 3})
    part = instantiate({"_target_": "my_app.Optimizer", "_partial_": True, "lr": 0.5})
    assert isinstance(part, functools.partial)
    assert part(algo="Adam") == Optimizer(lr=0.5, algo="Adam")
    assert instantiate(L(Optimizer)(lr=0.1), lr=0.2) == Optimizer(lr=0.2)


def test_recursive_false_passes_children_unbuilt():
    child = L(Net)(width=4)
    _, kwargs = instantiate({"_target_": "my_app.collect", "_recursive_": False, "net": child})
    assert kwargs["net"] is child


def test_recursive_false_with_partial_returns_a_partial_of_unbuilt_children():
    child = L(Net)(width=4)
    node = {"_target_": "my_app.collect", "_recursive_": False, "_partial_": True, "net": child}
    part = instantiate(node)
    assert isinstance(part, functools.partial)
    assert part(extra=1) == ((), {"net": child, "extra": 1})


def test_recursive_false_skips_type_checks_of_unbuilt_children():
    # Model.block is an attrs-typed field: built, a dict would be structured into a Block; left
    # unbuilt, the node itself is passed on (the target builds it when it wants to)
    child = L(my_app.Block)(width=2)
    model = instantiate(L(my_app.Model)(block=child, _recursive_=False))
    assert model.block is child
    # plain values are still checked: they are what the target gets
    with pytest.raises(InstantiationError, match="expected int") as info:
        instantiate(L(my_app.Model)(block=child, depth="2", _recursive_=False))
    assert info.value.path == "depth"
    assert [p.path for p in check(L(my_app.Model)(block=child, depth="2", _recursive_=False))] == [
        "depth"
    ]


def test_input_is_never_mutated_nor_deep_copied(monkeypatch):
    cfg = seed_cfg()
    snapshot = copy.deepcopy(cfg)
    monkeypatch.setattr(copy, "deepcopy", lambda *a, **k: pytest.fail("deepcopy called"))
    instantiate(cfg, seed=3)
    assert cfg == snapshot


def test_shared_node_is_built_once_and_equal_nodes_stay_distinct():
    model = L(Net)(width=3)
    cfg = L(Opt)(params=L(params_of)(model=model), model=model)
    opt = instantiate(cfg)
    assert opt.params == [3]
    built = instantiate({"a": model, "b": [model], "c": L(Net)(width=3)})
    assert built["a"] is built["b"][0]
    assert built["a"] == built["c"] and built["a"] is not built["c"]


def test_shared_node_calls_target_once():
    node = L(my_app.counted)()
    before = my_app.counter["calls"]
    instantiate({"x": node, "y": node, "z": [node]})
    assert my_app.counter["calls"] == before + 1


def test_cycle_is_an_error_naming_the_closing_path():
    node = L(Net)()
    node["width"] = {"again": node}
    with pytest.raises(InstantiationError) as info:
        instantiate({"model": node})
    assert info.value.path == "model.width.again"
    assert "cycle" in str(info.value)


def test_ten_thousand_deep_chain_builds():
    cfg = L(my_app.identity)(value=0)
    for _ in range(10_000):
        cfg = L(my_app.identity)(value=cfg)
    assert instantiate(cfg) == 0


def test_user_exception_is_the_cause_with_path_and_target():
    cfg = {
        "model": {"blocks": [L(Net)(), L(Net)(), L(Net)(), {"width": L(Exploding)(reason="bad")}]}
    }
    with pytest.raises(InstantiationError) as info:
        instantiate(cfg)
    error = info.value
    assert error.path == "model.blocks[3].width"
    assert error.target == "my_app.Exploding"
    assert isinstance(error.__cause__, ValueError) and error.user_error
    assert "model.blocks[3].width" in str(error) and "my_app.Exploding" in str(error)
    assert "bad" in str(error)


def test_positional_argument_paths():
    with pytest.raises(InstantiationError) as info:
        instantiate(L("my_app.collect")(1, L(Exploding)()))
    assert info.value.path == "_args_[1]"


def test_misspelled_keyword_lists_accepted_ones():
    with pytest.raises(InstantiationError) as info:
        instantiate({"trainer": L(Trainer)(optimizer=L(Optimizer)(lr=1.0, algoo="SGD"))})
    error = info.value
    assert error.path == "trainer.optimizer"
    assert "algoo" in str(error) and "did you mean 'algo'" in str(error)
    assert "accepted: lr, algo" in str(error)
    assert not error.user_error


def test_unknown_target_suggests_a_close_name():
    with pytest.raises(InstantiationError) as info:
        instantiate({"opt": {"_target_": "my_app.Optimiser", "lr": 1}})
    assert info.value.path == "opt" and info.value.target == "my_app.Optimiser"
    assert "did you mean 'Optimizer'" in str(info.value)


def test_unknown_module_and_non_callable_target():
    with pytest.raises(InstantiationError, match="no module named 'no_such_pkg'"):
        instantiate({"_target_": "no_such_pkg.Thing"})
    with pytest.raises(InstantiationError, match="not callable") as info:
        instantiate({"x": {"_target_": "my_app.NOT_CALLABLE"}})
    assert info.value.path == "x"


def test_malformed_special_keys():
    with pytest.raises(InstantiationError, match="'_args_' must be a list") as info:
        instantiate({"n": {"_target_": "my_app.collect", "_args_": "oops"}})
    assert info.value.path == "n"
    with pytest.raises(InstantiationError, match="'_partial_' must be true or false"):
        instantiate({"_target_": "my_app.collect", "_partial_": "yes"})
    with pytest.raises(InstantiationError, match="only allowed beside '_target_'"):
        instantiate({"a": {"_args_": [1]}})


def test_import_nodes_load_objects():
    assert instantiate({"fn": {"_import_": "my_app:params_of"}}) == {"fn": params_of}


@pytest.mark.parametrize("target", [":", ":Net", "my_app:", "my_app::Net", "my_app..Net"])
def test_malformed_import_paths_are_instantiation_errors(target):
    with pytest.raises(InstantiationError, match="malformed import path") as info:
        instantiate({"k": {"_target_": target}})
    assert info.value.path == "k" and not info.value.user_error


def test_a_module_that_raises_on_import_is_a_user_error(tmp_path, monkeypatch):
    (tmp_path / "broken_on_import.py").write_text("raise RuntimeError('import-time bug')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InstantiationError, match="import-time bug") as info:
        instantiate({"m": {"_target_": "broken_on_import.Thing"}})
    assert info.value.path == "m" and info.value.user_error
    assert isinstance(info.value.__cause__, RuntimeError)
