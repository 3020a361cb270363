"""DiVeRSe as corelib components: diverse prompts, verifiers and answer votes.

``verifiers/diverse_prompts`` samples M1 exemplar sets x M2 paths per question;
``verifiers/step_aware``, ``verifiers/path``, ``verifiers/lm`` (on a frozen language model's
token probabilities) and ``verifiers/value_head`` (the language model itself, fine-tuned with a
value head) score paths (torch models trained with the ddp Trainer); and
``verifiers/voting`` (DiVeRSe's voting verifier), ``verifiers/majority`` (self-consistency) and
``verifiers/best_path`` choose an answer. The readers (``parsers``) and path labelling
(``labellers``) are registered too, so YAML configs reach them in safe mode. This module is
light: it imports neither torch nor numpy.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl

__all__ = ["corelib_register"]


_COMPONENTS = {
    "prompt_generators": {"diverse_prompts": "plugins.verifiers.prompts:DiversePrompts"},
    "verifiers": {
        "step_aware": "plugins.verifiers.verifier:StepAwareVerifier",
        "path": "plugins.verifiers.verifier:PathVerifier",
        "lm": "plugins.verifiers.lm_verifier:LMVerifier",
        "value_head": "plugins.verifiers.value_head:ValueHeadVerifier",
    },
    "aggregators": {
        "voting": "plugins.verifiers.voting:VotingVerifier",
        "majority": "plugins.verifiers.voting:MajorityVote",
        "best_path": "plugins.verifiers.voting:BestPath",
    },
    "parsers": {
        "regex_answer": "plugins.verifiers.parsing:RegexAnswer",
        "step_splitter": "plugins.verifiers.parsing:StepSplitter",
        "regex_results": "plugins.verifiers.parsing:RegexResults",
    },
    "labellers": {
        "path_labeller": "plugins.verifiers.labels:PathLabeller",
        "arithmetic_steps": "plugins.verifiers.labels:ArithmeticStepLabeller",
    },
}


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the components lazily (by ``"module:attr"`` reference)."""
    for group, components in _COMPONENTS.items():
        for name, ref in components.items():
            registry.register(group, name, ref)
