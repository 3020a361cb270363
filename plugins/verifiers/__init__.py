"""DiVeRSe as corelib components: diverse prompts, verifiers and answer votes.

``verifiers/diverse_prompts`` samples M1 exemplar sets x M2 paths per question,
``verifiers/step_aware`` and ``verifiers/path`` score paths (torch models trained with the ddp
Trainer), and ``verifiers/voting`` (DiVeRSe's voting verifier), ``verifiers/majority``
(self-consistency) and ``verifiers/best_path`` choose an answer. This module is light: it
imports neither torch nor numpy.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl

__all__ = ["corelib_register"]


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the components lazily (by ``"module:attr"`` reference)."""
    registry.register(
        "prompt_generators", "diverse_prompts", "plugins.verifiers.prompts:DiversePrompts"
    )
    registry.register("verifiers", "step_aware", "plugins.verifiers.verifier:StepAwareVerifier")
    registry.register("verifiers", "path", "plugins.verifiers.verifier:PathVerifier")
    registry.register("aggregators", "voting", "plugins.verifiers.voting:VotingVerifier")
    registry.register("aggregators", "majority", "plugins.verifiers.voting:MajorityVote")
    registry.register("aggregators", "best_path", "plugins.verifiers.voting:BestPath")
