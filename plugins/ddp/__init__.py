"""Training as corelib components: the ``ddp/trainer`` fit loop, its parallel strategies
(``ddp/single``, ``ddp/ddp``, ``ddp/fsdp2``, ``ddp/tp``, ``ddp/fsdp2_tp``, ``ddp/pipeline``) and
callbacks (``ddp/progress``, ``ddp/metrics_logger``, ``ddp/checkpointer``,
``ddp/early_stopping``, ``ddp/mlflow``, ``ddp/wandb``, ``ddp/throughput``), and the small
models and synthetic data the examples train (``ddp/mlp``, ``ddp/transformer_lm``,
``ddp/gaussian_blobs``, ``ddp/markov_tokens``, ``ddp/lm_loss``), and one small training config
per strategy (``ddp/train_single``, ``ddp/train_ddp``, ... in the group ``configs``).

This module is light: components are registered by reference and import torch only when used.
The trainer's events are hookspecs in :mod:`plugins.ddp.hookspecs`. A worker stopped by SIGINT
(Ctrl-C) or SIGTERM saves a checkpoint and exits with :data:`SIGINT_EXIT_CODE` (130) or
:data:`SIGTERM_EXIT_CODE` (143): what a launcher passes on.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl
from plugins.ddp._signals import SIGINT_EXIT_CODE, SIGTERM_EXIT_CODE

__all__ = ["SIGINT_EXIT_CODE", "SIGTERM_EXIT_CODE", "corelib_register"]

_COMPONENTS = {
    "trainers": {"trainer": "plugins.ddp.trainer:Trainer"},
    "strategies": {
        "single": "plugins.ddp.strategies.single:SingleDevice",
        "ddp": "plugins.ddp.strategies.ddp:DDP",
        "fsdp2": "plugins.ddp.strategies.fsdp2:FSDP2",
        "tp": "plugins.ddp.strategies.tp:TensorParallel",
        "fsdp2_tp": "plugins.ddp.strategies.fsdp2_tp:FSDP2TP",
        "pipeline": "plugins.ddp.strategies.pipeline:Pipeline",
    },
    "callbacks": {
        "progress": "plugins.ddp.callbacks:ProgressBar",
        "metrics_logger": "plugins.ddp.callbacks:MetricsLogger",
        "checkpointer": "plugins.ddp.checkpointer:Checkpointer",
        "early_stopping": "plugins.ddp.early_stopping:EarlyStopping",
        "mlflow": "plugins.ddp.trackers:MLflowTracker",
        "wandb": "plugins.ddp.trackers:WandbTracker",
        "throughput": "plugins.ddp.throughput:Throughput",
    },
    "models": {
        "mlp": "plugins.ddp.models:MLP",
        "transformer_lm": "plugins.ddp.models:TransformerLM",
    },
    "datasets": {
        "gaussian_blobs": "plugins.ddp.synthetic:gaussian_blobs",
        "markov_tokens": "plugins.ddp.models:markov_tokens",
    },
    "losses": {"lm_loss": "plugins.ddp.models:lm_loss"},
    "configs": {  # one smoke-sized training run per strategy: corelib run ddp/train_ddp
        f"train_{strategy}": f"plugins.ddp:configs/train_{strategy}.yaml"
        for strategy in ("single", "ddp", "fsdp2", "tp", "fsdp2_tp", "pipeline")
    },
}


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register every ddp component lazily (as ``"module:attr"`` references)."""
    for group, components in _COMPONENTS.items():
        for name, ref in components.items():
            registry.register(group, name, ref)
