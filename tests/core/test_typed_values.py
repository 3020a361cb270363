"""Typed values: attrs targets go through cattrs; strict scalars; errors name the field."""

import pytest
from my_app import Block, Model, Optimizer

from corelib import InstantiationError, L, instantiate


def test_nested_dict_becomes_the_attrs_field_type():
    model = instantiate({"_target_": "my_app.Model", "block": {"width": 4}, "names": ["a"]})
    assert model == Model(block=Block(width=4), names=["a"])


def test_int_is_accepted_for_float_and_converted():
    assert instantiate(L(Optimizer)(lr=1)).lr == 1.0
    assert isinstance(instantiate(L(Optimizer)(lr=1)).lr, float)


def test_wrong_type_names_path_expected_type_and_value():
    with pytest.raises(InstantiationError) as info:
        instantiate(
            {"trainer": {"_target_": "my_app.Trainer", "optimizer": L(Optimizer)(lr="fast")}}
        )
    error = info.value
    assert error.path == "trainer.optimizer.lr"
    assert "expected float" in str(error) and "'fast'" in str(error)


def test_wrong_type_inside_a_list_field():
    with pytest.raises(InstantiationError) as info:
        instantiate({"_target_": "my_app.Model", "block": Block(1), "names": ["a", 3]})
    assert info.value.path == "names[1]"
    assert "expected str" in str(info.value)


def test_nested_attrs_dict_with_bad_value_names_the_field():
    with pytest.raises(InstantiationError) as info:
        instantiate({"m": {"_target_": "my_app.Model", "block": {"width": "wide"}}})
    assert info.value.path == "m.block.width"
    assert "expected int, got str 'wide'" in str(info.value)


def test_a_string_is_not_an_int_inside_an_attrs_field_either():
    with pytest.raises(InstantiationError, match="expected int, got str '3'") as info:
        instantiate({"_target_": "my_app.Model", "block": {"width": "3"}, "names": []})
    assert info.value.path == "block.width"


def test_bool_is_not_an_int_and_float_is_not_an_int():
    for bad in (True, 1.5, "3"):
        with pytest.raises(InstantiationError, match="expected int"):
            instantiate({"_target_": "my_app.Block", "width": bad})


def test_values_that_fit_are_passed_unchanged():
    block = Block(2)
    model = instantiate({"_target_": "my_app.Model", "block": block, "names": ["x", "y"]})
    assert model.block is block
    assert model.names == ["x", "y"] and type(model.names) is list
