"""Ctrl-C and SIGTERM under a real ``torch.distributed.run`` launch: every worker saves a
checkpoint and exits 130 or 143, and the next run resumes from that checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _training import FinalState, make_trainer

from plugins.ddp import SIGINT_EXIT_CODE, SIGTERM_EXIT_CODE
from plugins.ddp.checkpoint import latest_checkpoint
from plugins.ddp.strategies.single import SingleDevice

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(150)]

_WORKER = """
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from _training import make_trainer
    from corelib import hookimpl
    from plugins.ddp.strategies.ddp import DDP

    out = Path(sys.argv[1])

    class Slowly:
        @hookimpl
        def ddp_step_end(self, trainer, step):
            time.sleep(0.02)
            if step == 3 and trainer.strategy.is_main:
                (out / "training").touch()

    try:
        make_trainer(
            strategy=DDP(timeout_s=20), callbacks=(Slowly(),), checkpoint_dir=out / "checkpoints",
            checkpoint_every=1000, max_steps=100000,
        ).fit()
    except SystemExit as stopped:
        (out / f"exit_rank{{os.environ['RANK']}}").write_text(str(stopped.code))
        raise
"""


def _train_then_signal(tmp_path: Path, send: object) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(_WORKER.format(tests=str(Path(__file__).parent))))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "--monitor-interval", "0.5", str(script), str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group, as a terminal gives a foreground job
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "training").exists():
            assert launcher.poll() is None, launcher.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "training did not start within 90 s"
            time.sleep(0.1)
        if send == "SIGINT to the process group":  # what Ctrl-C does
            os.killpg(launcher.pid, signal.SIGINT)
        else:  # what a scheduler does: the launcher forwards it to the workers
            launcher.send_signal(signal.SIGTERM)
        stdout, stderr = launcher.communicate(timeout=45)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.communicate()
    return subprocess.CompletedProcess(command, launcher.returncode, stdout, stderr)


@pytest.mark.parametrize(
    ("send", "name", "code"),
    [
        ("SIGINT to the process group", "SIGINT", SIGINT_EXIT_CODE),
        ("SIGTERM to the launcher", "SIGTERM", SIGTERM_EXIT_CODE),
    ],
)
def test_a_stopped_run_saves_a_checkpoint_exits_with_the_signal_code_and_resumes(
    tmp_path: Path, send: str, name: str, code: int
) -> None:
    done = _train_then_signal(tmp_path, send)
    assert [(tmp_path / f"exit_rank{rank}").read_text() for rank in (0, 1)] == [str(code)] * 2, (
        done.stderr[-3000:]
    )
    saved = latest_checkpoint(tmp_path / "checkpoints")
    assert saved is not None, done.stderr[-3000:]
    step = int(saved.name.removeprefix("step_"))
    assert step >= 3
    assert f"ddp/trainer: {name}: stopped after step {step}; checkpoint {saved}" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr
    resumed = FinalState()  # one process, the same global batch: it continues where they left
    make_trainer(
        strategy=SingleDevice(),
        callbacks=(resumed,),
        batch_size=16,
        checkpoint_dir=tmp_path / "checkpoints",
        max_steps=step + 2,
    ).fit()
    assert resumed.steps == [step + 1, step + 2]
