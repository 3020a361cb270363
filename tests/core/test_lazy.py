"""LazyCall builds config nodes; LazyConfig is a dict with attribute access."""

import gc
import pickle
import weakref

import pytest
from my_app import Net, Opt, Optimizer, Trainer, params_of

from corelib import ConfigError, L, LazyCall, LazyConfig, instantiate


def test_lazycall_records_target_and_keywords():
    cfg = L(Trainer)(optimizer=L(Optimizer)(lr=0.01, algo="SGD"))
    assert isinstance(cfg, LazyConfig) and isinstance(cfg, dict)
    assert cfg["_target_"] is Trainer
    assert cfg.optimizer == {"_target_": Optimizer, "lr": 0.01, "algo": "SGD"}
    assert L is LazyCall


def test_positional_arguments_go_under_args():
    cfg = L("my_app.collect")(1, 2, key="v")
    assert cfg == {"_target_": "my_app.collect", "_args_": [1, 2], "key": "v"}


def test_attribute_access_reads_and_writes_keys():
    cfg = L(Trainer)(optimizer=L(Optimizer)(lr=0.01))
    cfg.optimizer.lr = 0.1
    cfg.seed = 3
    assert cfg["optimizer"]["lr"] == 0.1 and cfg["seed"] == 3
    del cfg.seed
    assert "seed" not in cfg
    with pytest.raises(AttributeError, match="no key 'missing'"):
        _ = cfg.missing


def test_non_callable_target_is_a_config_error():
    with pytest.raises(ConfigError, match="callable or a target string"):
        L(42)


def test_lazyconfig_pickles():
    cfg = L("my_app.Net")(width=3)
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_plain_dicts_inside_become_nodes_with_attribute_access():
    cfg = L("my_app.collect")(opts={"a": {"b": 1}}, items=[{"c": 2}])
    assert cfg.opts.a.b == 1
    assert cfg["items"][0].c == 2
    assert LazyConfig({"a": {"b": 1}}).a.b == 1
    cfg.extra = {"d": {"e": 3}}
    assert cfg.extra.d.e == 3


def test_config_nodes_inside_plain_dicts_are_not_copied():
    shared = L("my_app.Net")(width=2)
    cfg = L("my_app.collect")(opts={"x": shared, "y": [shared]})
    assert cfg.opts.x is shared and cfg.opts.y[0] is shared


def test_a_plain_dict_given_to_several_nodes_becomes_one_shared_node():
    model = {"_target_": "my_app.Net", "width": 3}
    cfg = L(Opt)(params=L(params_of)(model=model), model=model)
    assert cfg.model is cfg.params.model  # one node, so instantiate builds it once
    both = LazyConfig(a=model, b=model)
    both.c = model
    assert both.a is both.b is both.c is cfg.model
    opt = instantiate(cfg)
    assert opt.params == [3] and opt.model == Net(3)


def test_sharing_a_plain_dict_keeps_no_node_alive():
    model = {"_target_": "my_app.Net", "width": 1}
    first = weakref.ref(L("my_app.collect")(net=model).net)
    gc.collect()
    assert first() is None  # the node died with its config
    model["width"] = 2
    assert L("my_app.collect")(net=model).net.width == 2  # so the next one is made afresh
