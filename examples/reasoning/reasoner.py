"""The reasoner stage: train the tiny GPT with ``ddp/trainer`` on N processes, then save it.

The stage trains a tokenizer on the training split, completes the training job's config with
this run's paths, checks it (``corelib.check``, here, where its targets are already imported),
writes it to ``<run_dir>/reasoner/job.yaml`` and starts N workers on it with torchrun, each
running the real command line (``corelib run job.yaml``). That is what ``corelib run job.yaml
--nproc-per-node N`` does, without a third process importing torch and transformers again only
to check the config. Rank 0 of the job saves the model with ``save_pretrained`` where
``llm/transformers`` loads it. The trainer's checkpoints live in the stage directory, so an
interrupted stage resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corelib import ConfigError, LazyCall, LazyConfig, check, load_config, save_config
from examples.reasoning._io import read_json, write_json
from examples.reasoning.data import load_split
from examples.reasoning.lm import build_tokenizer
from examples.reasoning.pipeline import StageContext

__all__ = ["TrainLM", "TrainReasoner"]

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the job's workers import ``examples.reasoning`` from here."""
ALLOWED = ("examples.reasoning", "plugins", "torch.optim")
"""Import prefixes the job's YAML config may name (it is built in corelib's safe mode)."""


class TrainLM:
    """The training job each worker runs: ``trainer.fit()``, then rank 0 saves ``model``.

    ``model`` is the node the trainer trains too (one shared object), so it holds the trained
    weights when ``fit`` returns. The model and the tokenizer in ``tokenizer`` are written to
    ``output`` (atomically: a temporary directory renamed into place) with ``metrics.json``.
    """

    def __init__(self, trainer: Any, model: Any, *, tokenizer: str, output: str) -> None:
        self.trainer = trainer
        self.model = model
        self.tokenizer = tokenizer
        self.output = Path(output)

    def run(self) -> dict[str, float]:
        """Train; on rank 0 save the model; return the trainer's final metrics."""
        metrics = self.trainer.fit()
        if os.environ.get("RANK", "0") == "0":
            self._save(metrics)
        return metrics

    def _save(self, metrics: dict[str, float]) -> None:
        from transformers import PreTrainedTokenizerFast

        temporary = self.output.with_name(f".{self.output.name}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        self.model.save_pretrained(temporary)
        PreTrainedTokenizerFast.from_pretrained(self.tokenizer).save_pretrained(temporary)
        write_json(temporary / "metrics.json", metrics)
        shutil.rmtree(self.output, ignore_errors=True)
        os.replace(temporary, self.output)


class TrainReasoner:
    """Train the reasoner on the data stage's training split (build with ``_recursive_=False``).

    ``trainer``, ``model`` and ``data`` are config nodes (a ``ddp/trainer`` without model and
    data, a model factory taking ``tokenizer``, a dataset taking ``problems`` and
    ``tokenizer``); the stage fills in those paths and the checkpoint directory, and launches
    ``nproc_per_node`` workers (at most one per GPU where there are GPUs) with ``threads``
    torch threads each.
    """

    def __init__(
        self,
        trainer: Mapping[str, Any],
        model: Mapping[str, Any],
        data: Mapping[str, Any],
        *,
        vocab_size: int = 600,
        nproc_per_node: int = 2,
        threads: int = 1,
        data_stage: str = "data",
    ) -> None:
        self.trainer = trainer
        self.model = model
        self.data = data
        self.vocab_size = vocab_size
        self.nproc_per_node = nproc_per_node
        self.threads = threads
        self.data_stage = data_stage

    def job(self, directory: Path, problems: Path) -> LazyConfig:
        """The training job's config, completed with the paths under ``directory``."""
        tokenizer = str(directory / "tokenizer")
        model = LazyConfig({**self.model, "tokenizer": tokenizer})
        data = LazyConfig({**self.data, "problems": str(problems), "tokenizer": tokenizer})
        trainer = LazyConfig(
            {
                **self.trainer,
                "model": model,
                "train_data": data,
                "checkpoint_dir": str(directory / "checkpoints"),
            }
        )
        output = str(directory / "model")
        return LazyCall(TrainLM)(trainer=trainer, model=model, tokenizer=tokenizer, output=output)

    def processes(self) -> int:
        """``nproc_per_node``, or one per GPU where there are fewer GPUs (NCCL needs its own)."""
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return min(self.nproc_per_node, gpus) if gpus else self.nproc_per_node

    def run(self, context: StageContext) -> str:
        """Build the tokenizer, launch the job, and summarise its final metrics."""
        data_dir = context.output(self.data_stage)
        directory = context.directory
        build_tokenizer(load_split(data_dir, "train"), self.vocab_size).save_pretrained(
            directory / "tokenizer"
        )
        path = save_config(self.job(directory, data_dir / "train.jsonl"), directory / "job.yaml")
        problems = check(load_config(path), allow=ALLOWED)  # what the workers will read
        if problems:
            listed = "\n".join(f"  {problem}" for problem in problems)
            raise ConfigError(f"reasoner: {path} has problems:\n{listed}")
        # as `corelib run --nproc-per-node` starts them: -P, no module from the current folder
        command = [sys.executable, "-P", "-m", "torch.distributed.run"]
        command += ["--nproc-per-node", str(self.processes()), "--no-python", sys.executable]
        command += ["-P", "-u", "-m", "corelib", "run"]
        command += [str(path), *(arg for prefix in ALLOWED for arg in ("--allow-import", prefix))]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": str(self.threads),
            # as `corelib run --nproc-per-node` sets it (pytorch/pytorch#135712)
            "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
        }
        completed = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"reasoner: the training job exited with code {completed.returncode} "
                f"(command: {' '.join(command)}); its errors are printed above"
            )
        metrics = read_json(directory / "model" / "metrics.json")
        return (
            f"{int(metrics['step'])} steps on {self.processes()} processes, "
            f"final train loss {metrics['train/loss']:.3f}"
        )
