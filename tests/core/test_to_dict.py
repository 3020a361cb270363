"""to_dict: plain containers, import-path targets, shared nodes kept, unnameable values refused."""

import pytest
from my_app import Net, Optimizer, params_of

from corelib import ConfigError, L, instantiate, to_dict


def test_callables_elsewhere_become_import_nodes_that_build_back():
    cfg = L("my_app.collect")(fn=params_of, cls=Net)
    plain = to_dict(cfg)
    assert plain == {
        "_target_": "my_app.collect",
        "fn": {"_import_": "my_app.params_of"},
        "cls": {"_import_": "my_app.Net"},
    }
    assert instantiate(plain) == instantiate(cfg)


def test_plain_types_and_sharing():
    shared = L(Net)(width=2)
    plain = to_dict({"a": shared, "b": (shared, 1)})
    assert type(plain) is dict and type(plain["b"]) is list
    assert plain["a"] is plain["b"][0]


def test_lambda_and_local_class_name_their_key_path():
    with pytest.raises(ConfigError, match=r"model\.act"):
        to_dict({"model": L(Net)(act=lambda x: x)})

    class Local:
        pass

    with pytest.raises(ConfigError, match=r"blocks\[1\]\._target_"):
        to_dict({"blocks": [L(Optimizer)(lr=1), L(Local)()]})


def test_builtins_exposed_on_a_module_are_written_by_their_module_name():
    import math

    assert to_dict(L("my_app.collect")(fn=math.sqrt)) == {
        "_target_": "my_app.collect",
        "fn": {"_import_": "math.sqrt"},
    }
