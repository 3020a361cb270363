"""Faults under a real ``torch.distributed.run`` launch: a crash ends the job, a restart resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _training import FinalState, make_trainer, max_difference

from plugins.ddp.strategies.single import SingleDevice

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(180)]

_WORKER = """
    import os, sys
    from pathlib import Path
    import torch
    sys.path.insert(0, {tests!r})
    from _training import FinalState, make_trainer
    from corelib import hookimpl
    from plugins.ddp.strategies.ddp import DDP

    out, crash_step = Path(sys.argv[1]), int(sys.argv[2])

    class CrashOnce:
        @hookimpl
        def ddp_step_end(self, trainer, step):
            first_attempt = os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"
            if step == crash_step and trainer.strategy.rank == 1 and first_attempt:
                raise RuntimeError(f"injected failure at step {{step}}")

    final = FinalState()
    metrics = make_trainer(
        strategy=DDP(timeout_s=20),
        callbacks=(final, CrashOnce()),
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=2,
        max_steps=8,
    ).fit()
    if int(os.environ["RANK"]) == 0:
        torch.save({{"params": final.params, "steps": final.steps, "metrics": metrics}},
                   out / "result.pt")
"""


def _torchrun(tmp_path: Path, crash_step: int, max_restarts: int) -> subprocess.CompletedProcess:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER.format(tests=str(Path(__file__).parent))))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "--max-restarts", str(max_restarts), "--monitor-interval", "0.5",
        str(script), str(tmp_path), str(crash_step),
    ]  # fmt: skip
    # Without it a restarted attempt can read the previous attempt's gloo addresses from the
    # shared rendezvous store and fail to connect (pytorch/pytorch#135712).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=170, env=env)


def test_a_crash_in_one_rank_ends_the_job_naming_the_rank_and_error(tmp_path: Path) -> None:
    done = _torchrun(tmp_path, crash_step=3, max_restarts=0)
    assert done.returncode != 0
    assert "ddp/trainer: rank 1 of 2 failed: RuntimeError: injected failure at step 3" in (
        done.stderr
    )
    assert not (tmp_path / "result.pt").exists()


def test_a_restarted_job_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    done = _torchrun(tmp_path, crash_step=5, max_restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    result = torch.load(tmp_path / "result.pt")
    assert result["steps"] == [5, 6, 7, 8]  # the restart resumed from step 4's checkpoint
    assert result["metrics"]["step"] == 8.0
    uninterrupted = FinalState()  # one process with the same global batch (2 ranks x 8)
    trainer = make_trainer(
        strategy=SingleDevice(), callbacks=(uninterrupted,), batch_size=16, max_steps=8
    )
    trainer.fit()
    assert max_difference(result["params"], uninterrupted.params) < 1e-5
