"""``llm/transformers``' own decoding loop against Hugging Face's ``generate``, side by side.

Both make the same choices (the backend's seeded `TokenChooser` and stop check; ``generate``
gets them as a logits processor and a stopping criterion, which is how the backend drove it
before). The loop reads each prompt once for all its samples and drops finished rows;
``generate`` reads each row's prompt and keeps finished rows until the whole batch ends. The
script checks that both give the same texts, then prints the median time of each and the ratio.

With ``--run-dir`` it takes the main job's trained reasoner and its DiVeRSe prompts for the
first ``--questions`` test questions (the paths stage's workload); without it, a tiny random
GPT-2 and synthetic prompts.

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_decode.py --run-dir runs/reasoning
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import GenerationConfig, LogitsProcessor, StoppingCriteria

from plugins.llm._chunks import chunks
from plugins.llm._sampling import StopWatcher, TokenChooser, row_seed
from plugins.llm._text import cut_at_stop
from plugins.llm.testing import make_tiny_model
from plugins.llm.transformers_backend import TransformersLLM


class _Choices(LogitsProcessor):
    """Makes ``generate`` follow a `TokenChooser` (every row, every step)."""

    def __init__(self, chooser: TokenChooser, rows: int) -> None:
        self.chooser, self.rows = chooser, torch.arange(rows)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        chosen, _ = self.chooser(scores.float(), self.rows)
        return torch.full_like(scores, float("-inf")).scatter_(1, chosen[:, None], 0.0)


class _Stops(StoppingCriteria):
    """Ends ``generate``'s rows where the backend's `StopWatcher` would."""

    def __init__(self, watcher: StopWatcher, prompt_length: int) -> None:
        self.watcher, self.prompt_length = watcher, prompt_length
        self.lengths: dict[int, int] = {}  # row -> tokens generated when it ended

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: object) -> torch.Tensor:
        for row, tokens in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if row not in self.lengths and self.watcher(row, tokens):
                self.lengths[row] = len(tokens)
        return torch.tensor([row in self.lengths for row in range(input_ids.shape[0])])


def with_generate(
    llm: TransformersLLM,
    prompts: list[str],
    n: int,
    temperature: float,
    tokens: int,
    stop: list[str],
) -> list[str]:
    """The texts of ``generate`` driven by the backend's choices, batch by batch as the backend
    forms them (rows sorted by prompt length, ``llm.batch_size`` rows each)."""
    lengths = [len(ids) for ids in llm.tokenizer(prompts)["input_ids"]]
    rows = sorted(
        ((i, j) for i in range(len(prompts)) for j in range(n)), key=lambda r: -lengths[r[0]]
    )
    texts: dict[tuple[int, int], str] = {}
    for batch in chunks(rows, llm.batch_size):
        chooser = TokenChooser(temperature, 1.0, [row_seed(0, prompts[i], j) for i, j in batch])
        encoded = llm.tokenizer([prompts[i] for i, _ in batch], return_tensors="pt", padding=True)
        start = encoded["input_ids"].shape[1]
        watcher = StopWatcher(llm.tokenizer, llm._eos_ids, stop)
        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=tokens,
            eos_token_id=sorted(llm._eos_ids),
            pad_token_id=llm.tokenizer.pad_token_id,
        )
        stops = _Stops(watcher, start)
        with torch.inference_mode():
            out = llm.model.generate(
                **encoded,
                generation_config=config,
                logits_processor=[_Choices(chooser, len(batch))],
                stopping_criteria=[stops],
            )
        for slot, (row, generated) in enumerate(zip(batch, out[:, start:].tolist(), strict=True)):
            kept = generated[: stops.lengths.get(slot, len(generated))]  # generate pads after
            if slot in watcher.by_eos:
                kept = kept[:-1]
            texts[row] = cut_at_stop(llm.tokenizer.decode(kept, skip_special_tokens=True), stop)[0]
    return [texts[(i, j)] for i in range(len(prompts)) for j in range(n)]


def workload(
    args: argparse.Namespace, directory: str
) -> tuple[TransformersLLM, list[str], list[str]]:
    """The backend, the prompts and the stop strings to generate with."""
    if args.run_dir is None:
        llm = TransformersLLM(make_tiny_model(directory), batch_size=args.batch_size)
        return llm, [f"Question: {i} + {2 * i} = ? Answer:" for i in range(args.questions)], ["\n"]
    from corelib import instantiate
    from examples.reasoning import config

    run_dir = Path(args.run_dir)
    llm = TransformersLLM(run_dir / "reasoner" / "model", batch_size=args.batch_size)
    node = config.paths.prompts
    node.exemplars.path = str(run_dir / "data" / "val.jsonl")
    node.llm = llm
    prompts = instantiate(node)
    rows = [json.loads(line) for line in (run_dir / "paths" / "test.jsonl").open()]
    questions = [row["question"] for row in rows[: args.questions]]
    return llm, [p for q in questions for p in prompts.prompts(q)], list(prompts.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", help="the main job's run directory (its reasoner, test set)")
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        llm, prompts, stop = workload(args, directory)
        sampling = dict(temperature=args.temperature, max_new_tokens=args.max_new_tokens, stop=stop)
        runs = {
            "own loop": lambda: [
                c.text
                for cs in llm.generate(prompts, n=args.samples, seed=0, **sampling)
                for c in cs
            ],
            "generate": lambda: with_generate(
                llm, prompts, args.samples, args.temperature, args.max_new_tokens, stop
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        texts: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for name, run in runs.items():  # the runs take turns: load changes hit both alike
                start = time.perf_counter()
                texts[name] = run()
                times[name].append(time.perf_counter() - start)
        same = sum(a == b for a, b in zip(texts["own loop"], texts["generate"], strict=True))
        print(
            f"{len(prompts)} prompts x {args.samples} samples, {args.max_new_tokens} tokens at most"
        )
        print(f"same texts: {same}/{len(texts['generate'])}")
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, seconds in medians.items():
            ratio = seconds / medians["own loop"]
            print(f"{name:<9} {seconds:7.2f} s   {ratio:4.2f}x the own loop's time")


if __name__ == "__main__":
    main()
