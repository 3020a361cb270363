"""Generation throughput of the LLM backends on a tiny GPT-2 built locally.

Side by side in one run (medians over ``--repeats``):
- ``llm/transformers`` batched (one call) against one request at a time, on
  64 prompts x 8 samples: per sample (one call per prompt and sample) and per prompt (``n=8``);
- ``llm/openai`` against the local server with ``max_concurrency`` requests in flight against
  one at a time (the server batches concurrent requests).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_llm.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

from plugins.llm.openai_backend import OpenAILLM
from plugins.llm.testing import make_tiny_model, serve
from plugins.llm.transformers_backend import TransformersLLM


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each run; the runs take turns, so load changes hit them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument(
        "--batch-size", type=int, default=512, help="rows per forward pass (512: all at once)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    prompts = [f"Question: {i} + {2 * i} = ? Answer:" for i in range(args.prompts)]
    sampling = dict(temperature=1.0, seed=0, max_new_tokens=args.max_new_tokens)
    rows = args.prompts * args.samples

    with tempfile.TemporaryDirectory() as directory:
        llm = TransformersLLM(make_tiny_model(directory), batch_size=args.batch_size)
        print(
            f"{args.prompts} prompts x {args.samples} samples x {args.max_new_tokens} tokens, {llm}"
        )

        def batched() -> object:
            return llm.generate(prompts, n=args.samples, **sampling)

        def per_prompt() -> object:
            return [llm.generate([p], n=args.samples, **sampling) for p in prompts]

        def per_sample() -> object:
            return [
                llm.generate([p], **{**sampling, "seed": j})
                for p in prompts
                for j in range(args.samples)
            ]

        runs = {"batched": batched, "per prompt": per_prompt, "per sample": per_sample}
        results = median_seconds(runs, args.repeats)
        for name, seconds in results.items():
            print(
                f"transformers {name:<12} {seconds:8.3f} s  {rows / seconds:8.1f} samples/s  "
                f"{seconds / results['batched']:5.1f}x the batched time"
            )

        with serve(llm) as base_url:
            concurrent = OpenAILLM("local", base_url=base_url, max_concurrency=args.concurrency)
            sequential = OpenAILLM("local", base_url=base_url, max_concurrency=1)
            http_runs = {
                f"concurrency {args.concurrency}": lambda: concurrent.generate(
                    prompts, n=args.samples, **sampling
                ),
                "sequential": lambda: sequential.generate(prompts, n=args.samples, **sampling),
            }
            http = median_seconds(http_runs, args.repeats)
        fastest = min(http.values())
        for name, seconds in http.items():
            print(
                f"http {name:<20} {seconds:8.3f} s  {rows / seconds:8.1f} samples/s  "
                f"{seconds / fastest:5.1f}x the fastest time"
            )
        if concurrent.failures or sequential.failures:
            raise SystemExit(f"{concurrent.failures + sequential.failures} requests failed")


if __name__ == "__main__":
    main()
