"""Ask Me Anything: prompt chains and the weak-supervision label model, as corelib components.

``ama/label_model``, ``ama/majority`` and ``ama/metal_label_model`` (AMA's own aggregator, a
baseline) aggregate an (items, voters) vote matrix;
``ama/chain``, ``ama/chains`` (the chains of a shipped demonstration set), ``ama/task`` and
``ama/reformulations`` produce it with an LLM. This module is
light: it imports neither numpy nor the LLM backends.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl

__all__ = ["corelib_register"]


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the aggregators and prompt generators lazily (by ``"module:attr"`` reference)."""
    registry.register("aggregators", "label_model", "plugins.ama.label_model:LabelModel")
    registry.register("aggregators", "majority", "plugins.ama.majority:MajorityVote")
    registry.register("aggregators", "metal_label_model", "plugins.ama.metal:MetalLabelModel")
    registry.register("prompt_generators", "chain", "plugins.ama.chains:PromptChain")
    registry.register("prompt_generators", "chains", "plugins.ama.demos:task_chains")
    registry.register("prompt_generators", "task", "plugins.ama.task:ChainTask")
    registry.register(
        "prompt_generators", "reformulations", "plugins.ama.reformulate:Reformulations"
    )
