"""check: every target resolved, every keyword and type checked, nothing built, all problems."""

import my_app

from corelib import L, check


def test_reports_all_problems_at_once_without_building():
    before = my_app.counter["calls"]
    cfg = {
        "trainer": L("my_app.Trainer")(optimizer=L("my_app.Optimizer")(lrr=0.1), seed="x"),
        "missing": {"_target_": "my_app.Nope"},
        "args": {"_target_": "my_app.collect", "_args_": "bad"},
        "ok": L(my_app.counted)(),
    }
    problems = check(cfg)
    by_path = {p.path: p for p in problems}
    assert set(by_path) == {"trainer.optimizer", "trainer.seed", "missing", "args"}
    assert "did you mean 'lr'" in by_path["trainer.optimizer"].message
    assert "expected int" in by_path["trainer.seed"].message
    assert "Nope" in by_path["missing"].message
    assert my_app.counter["calls"] == before


def test_child_node_class_is_checked_against_the_annotation():
    problems = check(L("my_app.Trainer")(optimizer=L("my_app.Net")()))
    assert [p.path for p in problems] == ["optimizer"]
    assert "expected Optimizer" in problems[0].message


def test_missing_required_argument_and_clean_config():
    assert "missing a required argument" in str(check(L("my_app.Optimizer")()))
    assert check(L("my_app.Trainer")(optimizer=L("my_app.Optimizer")(lr=1))) == []


def test_safe_mode_refusals_are_problems():
    problems = check({"x": {"_target_": "os.system", "_args_": ["true"]}}, allow=())
    assert problems and "refused" in problems[0].message
