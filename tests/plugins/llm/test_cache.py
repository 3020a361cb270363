"""CachedLLM over real backends: hits, misses, failures not stored, resuming, configs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corelib import instantiate
from plugins.llm import Completion
from plugins.llm.cache import CachedLLM
from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.server import FaultPlan, LLMServer
from plugins.llm.transformers_backend import TransformersLLM

pytestmark = pytest.mark.timeout(60)

PROMPTS = [f"Question: {i} + {i} = ?" for i in range(10)]


def outputs(results: list[list[Completion]]) -> list[list[tuple[str, str]]]:
    """Texts and finish reasons (log-probs differ in the last bits from batch to batch)."""
    return [[(c.text, c.finish_reason) for c in completions] for completions in results]


class Interrupting:
    """Passes calls to a real backend, counting prompts; raises KeyboardInterrupt on call
    number ``interrupt_at`` (as Ctrl-C would, midway through a run)."""

    def __init__(self, llm: TransformersLLM, interrupt_at: int | None = None) -> None:
        self.llm = llm
        self.identity = llm.identity
        self.interrupt_at = interrupt_at
        self.calls = 0
        self.prompts: list[str] = []

    def generate(self, prompts: list[str], **parameters) -> list[list[Completion]]:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.prompts += prompts
        return self.llm.generate(prompts, **parameters)


def test_a_rerun_pays_nothing(tiny_llm: TransformersLLM, tmp_path: Path) -> None:
    with LLMServer(tiny_llm) as server:
        cached = CachedLLM(OpenAILLM("local", base_url=server.base_url), tmp_path / "cache.db")
        first = cached.generate(PROMPTS, n=2, temperature=1.0, seed=3, max_new_tokens=5)
        assert len(server.requests) == len(PROMPTS) and cached.misses == len(PROMPTS)
        again = CachedLLM(OpenAILLM("local", base_url=server.base_url), tmp_path / "cache.db")
        assert again.generate(PROMPTS, n=2, temperature=1.0, seed=3, max_new_tokens=5) == first
        assert len(server.requests) == len(PROMPTS)  # nothing new reached the server
        assert (again.hits, again.misses) == (len(PROMPTS), 0)


def test_every_parameter_and_the_backend_identity_are_in_the_key(
    tiny_llm: TransformersLLM, tmp_path: Path
) -> None:
    base = dict(n=1, temperature=1.0, top_p=1.0, max_new_tokens=4, stop=None, seed=1)
    variants = [{}, {"n": 2}, {"temperature": 0.5}, {"top_p": 0.9}, {"max_new_tokens": 3}]
    variants += [{"stop": ["x"]}, {"seed": 2}]
    cached = CachedLLM(tiny_llm, tmp_path / "cache.db")
    for variant in variants:
        cached.generate(["hi"], **{**base, **variant})
    assert cached.misses == len(variants) and cached.hits == 0
    other_dtype = TransformersLLM(tiny_llm.model_dir, device="cpu", dtype="bfloat16")
    CachedLLM(other_dtype, tmp_path / "cache.db").generate(["hi"], **base)
    with sqlite3.connect(tmp_path / "cache.db") as db:
        assert db.execute("SELECT COUNT(*) FROM completions").fetchone() == (len(variants) + 1,)


def test_greedy_ignores_the_seed_and_unseeded_samples_are_not_cached(
    tiny_llm: TransformersLLM, tmp_path: Path
) -> None:
    cached = CachedLLM(tiny_llm, tmp_path / "cache.db")
    cached.generate(["hi", "hi", "ho"], max_new_tokens=4, seed=1)
    cached.generate(["hi"], max_new_tokens=4, seed=2)
    assert (cached.hits, cached.misses) == (1, 2)
    fresh = [cached.generate(["hi"], temperature=1.0, max_new_tokens=8) for _ in range(2)]
    assert fresh[0] != fresh[1] and (cached.hits, cached.misses) == (1, 2)


def test_failures_are_not_stored_and_the_key_is_not_either(
    tiny_llm: TransformersLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORELIB_TEST_KEY", "sk-secret-in-env")
    with LLMServer(tiny_llm, faults=FaultPlan(by_prompt={PROMPTS[0]: ("400",)})) as server:
        llm = OpenAILLM("local", base_url=server.base_url, api_key_env="CORELIB_TEST_KEY")
        cached = CachedLLM(llm, tmp_path / "cache.db")
        first = cached.generate(PROMPTS[:3], max_new_tokens=4)
        assert first[0] == [] and cached.failures == 1
        second = cached.generate(PROMPTS[:3], max_new_tokens=4)
    assert second[0] and second[1:] == first[1:]
    assert sorted(r.prompt for r in server.requests) == sorted([*PROMPTS[:3], PROMPTS[0]])
    assert server.requests[-1].prompt == PROMPTS[0]
    cached.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"sk-secret-in-env" not in stored


def test_an_interrupted_run_resumes_where_it_stopped(
    tiny_llm: TransformersLLM, tmp_path: Path
) -> None:
    expected = tiny_llm.generate(PROMPTS, max_new_tokens=4)
    interrupted = Interrupting(tiny_llm, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        CachedLLM(interrupted, tmp_path / "cache.db", chunk_size=3).generate(
            PROMPTS, max_new_tokens=4
        )
    assert interrupted.prompts == PROMPTS[:6]  # two chunks were done and committed
    resumed = Interrupting(tiny_llm)
    cached = CachedLLM(resumed, tmp_path / "cache.db", chunk_size=3)
    assert outputs(cached.generate(PROMPTS, max_new_tokens=4)) == outputs(expected)
    assert resumed.prompts == PROMPTS[6:]


def test_a_backend_without_identity_is_refused(tmp_path: Path) -> None:
    class Anonymous:
        def generate(self, prompts, **parameters):
            return [[] for _ in prompts]

    with pytest.raises(TypeError, match="Anonymous has no 'identity'"):
        CachedLLM(Anonymous(), tmp_path / "cache.db")


def test_config_builds_a_cache_around_the_openai_backend(
    tiny_llm: TransformersLLM, tmp_path: Path
) -> None:
    with LLMServer(tiny_llm) as server:
        config = {
            "_target_": "llm/cached",
            "path": str(tmp_path / "cache.db"),
            "llm": {"_target_": "llm/openai", "model": "local", "base_url": server.base_url},
        }
        cached = instantiate(config)
        assert isinstance(cached, CachedLLM) and isinstance(cached.llm, OpenAILLM)
        assert (
            cached.generate(["hi"], max_new_tokens=4) == tiny_llm.generate(["hi"], max_new_tokens=4)
            or pytest.approx
        )
        assert len(server.requests) == 1
