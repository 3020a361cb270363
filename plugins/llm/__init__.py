"""LLM backends as corelib components (group ``llms``).

``llm/transformers`` runs a local Hugging Face model directory, ``llm/openai`` talks to any
OpenAI-compatible server, ``llm/cached`` wraps either with a SQLite disk cache. This module is
light: it imports neither torch nor transformers.
"""

from __future__ import annotations

from typing import Any

from corelib import hookimpl
from plugins.llm._types import LLM, Completion

__all__ = ["LLM", "Completion", "corelib_register"]


@hookimpl
def corelib_register(registry: Any) -> None:
    """Register the backends lazily (by ``"module:attr"`` reference)."""
    registry.register("llms", "transformers", "plugins.llm.transformers_backend:TransformersLLM")
    registry.register("llms", "openai", "plugins.llm.openai_backend:OpenAILLM")
    registry.register("llms", "cached", "plugins.llm.cache:CachedLLM")
