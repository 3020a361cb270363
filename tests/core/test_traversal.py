"""The one walker: bottom-up, explicit stack, identity sharing, cycles with their location."""

import pytest

from corelib._traversal import ROOT, CycleError, Location, fold, format_path


def _count(node, children, loc):
    return children


def test_paths_are_spelled_with_dots_and_indices():
    loc = ROOT.child("model").child("blocks").child(3).child("width")
    assert str(loc) == "model.blocks[3].width"
    assert str(ROOT) == ""
    assert str(ROOT.child(0).child("a")) == "[0].a"


def test_fold_rebuilds_children_first():
    order = []

    def visit(node, children, loc):
        order.append(str(loc))
        return children

    assert fold({"a": [1, {"b": 2}], "c": 3}, visit) == {"a": [1, {"b": 2}], "c": 3}
    assert order == ["a[1]", "a", ""]


def test_shared_nodes_are_visited_once_and_revisit_sees_both_locations():
    shared = {"x": 1}
    seen = []
    result = fold(
        {"a": shared, "b": [shared]},
        lambda node, children, loc: dict(children) if isinstance(children, dict) else children,
        revisit=lambda node, value, first, loc: seen.append((str(first), str(loc))) or value,
    )
    assert result["a"] is result["b"][0]
    assert seen == [("a", "b[0]")]


def test_cycle_names_the_closing_reference():
    node = {"a": {}}
    node["a"]["back"] = node
    with pytest.raises(CycleError) as info:
        fold(node, _count)
    assert str(info.value.location) == "a.back"
    assert isinstance(info.value.location, Location)


def test_deep_chain_needs_no_recursion():
    chain = {"leaf": 0}
    for _ in range(20_000):
        chain = {"next": chain}
    depth = 0
    result = fold(chain, lambda node, children, loc: children)
    while "next" in result:
        result = result["next"]
        depth += 1
    assert depth == 20_000


def test_descend_false_passes_none_and_enter_sees_preorder():
    entered = []
    fold(
        {"keep": {"inner": {}}},
        lambda node, children, loc: children,
        descend=lambda node: "inner" not in node,
        enter=lambda node, loc: entered.append(str(loc)),
    )
    assert entered == ["", "keep"]


def test_paths_spell_normal_keys_in_full_and_bound_long_keys_and_deep_paths() -> None:
    normal = ["model", "blocks", 3, "width", None, ""]
    assert format_path(normal) == "model.blocks[3].width[None]['']"
    long = "k" * 1_000
    assert format_path(["a", long, 0]) == f"a.{'k' * 40}…[+960 chars][0]"
    assert format_path(["a", long], exact=True) == f"a.{long}"  # what a file writes
    deep = format_path(["top", *range(1_000), "leaf"])
    assert deep.startswith("top[0][1][2]") and deep.endswith("[998][999].leaf")
    assert "…[+" in deep and " keys]…" in deep and len(deep) <= 530
    assert str(Location(ROOT, long)) == format_path([long])


def test_refer_is_asked_only_for_strings_with_a_reference_and_may_return_a_node() -> None:
    shared = {"w": 1}
    asked = []

    def refer(text: str, holder: object, at: Location, key: object) -> object:
        assert holder is tree or holder is tree["c"]
        asked.append((text, str(at.child(key))))
        return shared if text == "${node}" else text.upper()

    def visit(node: object, children: object, loc: Location) -> object:
        return children

    tree = {"a": "plain", "b": "${node}", "c": ["x ${y}", "${node}"], "node": shared}
    result = fold(tree, visit, refer=refer)
    assert asked == [("${node}", "b"), ("x ${y}", "c[0]"), ("${node}", "c[1]")]
    assert result["b"] is result["c"][1] is result["node"]  # walked once, where first reached
    assert result["c"][0] == "X ${Y}" and result["a"] == "plain"
    with pytest.raises(CycleError):  # a returned node that is being walked closes a cycle
        fold({"a": {"b": "${a}"}}, visit, refer=lambda text, holder, at, key: holder)
