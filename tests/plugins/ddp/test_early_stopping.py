"""``ddp/early_stopping``: patience, min_delta and mode; all ranks stop after the same step; the
last checkpoint is that step's; a resumed run stops where the uninterrupted one did."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_checkpointer import _Scripted
from test_trainer import _fit

from corelib import ConfigError
from plugins.ddp.checkpoint import latest_checkpoint
from plugins.ddp.early_stopping import EarlyStopping

_SCORES = {1: 1.0, 2: 0.9, 3: 0.95, 4: 0.89, 5: 0.5, 6: 0.4, 7: 0.3, 8: 0.2}


@pytest.mark.parametrize(
    ("options", "last_step"),
    [
        ({"patience": 2, "min_delta": 0.05}, 4),  # 0.95 and 0.89 are no better than 0.9 - 0.05
        ({"patience": 2}, 8),  # 0.89 improves on 0.9: the count starts over
        ({"patience": 1}, 3),
        ({"patience": 3, "mode": "max"}, 4),  # 1.0 (step 1) stays the best
    ],
)
def test_training_stops_after_patience_checks_without_improvement(
    options: dict[str, Any], last_step: int, capsys: pytest.CaptureFixture[str]
) -> None:
    final, metrics = _fit(
        max_steps=8, callbacks=(_Scripted(_SCORES), EarlyStopping("score", **options))
    )
    assert final.steps == list(range(1, last_step + 1))
    assert metrics["step"] == last_step
    if last_step < 8:
        assert re.search(
            rf"ddp/early_stopping: score has not improved by more than [\d.]+ for "
            rf"{options['patience']} checks \(best [\d.]+\); stopping after step {last_step}\n",
            capsys.readouterr().err,
        )


def test_a_resumed_run_remembers_the_best_value_and_the_checks_waited(tmp_path: Path) -> None:
    def fit(max_steps: int) -> list[int]:
        stopping = EarlyStopping("score", patience=2, min_delta=0.05)
        callbacks = (_Scripted(_SCORES), stopping)
        final, _ = _fit(max_steps=max_steps, callbacks=callbacks, checkpoint_dir=tmp_path)
        return final.steps

    assert fit(3) == [1, 2, 3]  # step 3 waited once, since 0.9 at step 2
    assert fit(8) == [4]  # so step 4 is the second check without improvement
    assert latest_checkpoint(tmp_path) == tmp_path / "step_000000004"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patience": 0}, "ddp/early_stopping: patience must be an integer >= 1, not 0"),
        ({"mode": "up"}, "ddp/early_stopping: mode must be 'min' or 'max', not 'up'"),
        ({"min_delta": -1}, "ddp/early_stopping: min_delta must be a number >= 0, not -1"),
    ],
)
def test_bad_settings_are_refused_when_built(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        EarlyStopping("val/loss", **options)


def test_a_monitored_metric_that_never_appears_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as failed:
        _fit(max_steps=8, callbacks=(EarlyStopping("val/los"),), val_data=_val(), val_every=2)
    assert str(failed.value) == (
        "ddp/early_stopping: monitor='val/los' is no metric the trainer reports; by the first "
        "validation it reported ['lr', 'train/loss', 'val/loss']"
    )


def _val() -> Any:
    from _training import make_data

    return make_data(64, sample_seed=1)


_WORKER = """
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from _training import FinalState, make_data, make_trainer, max_difference
    from plugins.ddp.early_stopping import EarlyStopping
    from plugins.ddp.strategies.ddp import DDP

    out = Path(sys.argv[1])

    def fit(directory, max_steps):
        final = FinalState()
        make_trainer(
            strategy=DDP(timeout_s=30), callbacks=(final, EarlyStopping("val/loss", patience=2)),
            checkpoint_dir=out / directory, checkpoint_every=4, max_steps=max_steps,
            val_data=make_data(64, sample_seed=1), val_every=4,
        ).fit()
        return final

    uninterrupted = fit("a", 300)
    fit("b", 12)
    resumed = fit("b", 300)
    (out / f"rank{{os.environ['RANK']}}.json").write_text(json.dumps({{
        "steps": uninterrupted.steps, "resumed": resumed.steps,
        "difference": max_difference(uninterrupted.params, resumed.params),
    }}))
"""


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(150)
def test_two_ranks_stop_after_the_same_step_and_resume_to_it(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER.format(tests=str(Path(__file__).parent))))
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=140, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["steps"] == ranks[1]["steps"]
    stopped = ranks[0]["steps"][-1]
    assert 12 < stopped < 300  # it stopped early, and after the interruption at step 12
    assert done.stderr.count(f"stopping after step {stopped}\n") == 2  # rank 0, in both runs
    assert latest_checkpoint(tmp_path / "a") == tmp_path / "a" / f"step_{stopped:09d}"
    for rank in ranks:
        assert rank["resumed"] == list(range(13, stopped + 1))
        assert rank["difference"] < 1e-6
