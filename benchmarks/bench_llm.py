"""Generation throughput of the LLM backends on a tiny GPT-2 built locally.

Side by side in one run (medians over ``--repeats``):
- ``llm/transformers`` batched (one ``generate`` call) against one request at a time, on
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


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
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
            return [llm.generate([p], **sampling) for p in prompts for _ in range(args.samples)]

        results = {
            name: median_seconds(run, args.repeats)
            for name, run in [
                ("batched", batched),
                ("per prompt", per_prompt),
                ("per sample", per_sample),
            ]
        }
        for name, seconds in results.items():
            print(
                f"transformers {name:<12} {seconds:8.3f} s  {rows / seconds:8.1f} samples/s  "
                f"batched is {seconds / results['batched']:5.1f}x faster"
            )

        with serve(llm) as base_url:
            concurrent = OpenAILLM("local", base_url=base_url, max_concurrency=args.concurrency)
            sequential = OpenAILLM("local", base_url=base_url, max_concurrency=1)
            http = {
                f"concurrency {args.concurrency}": median_seconds(
                    lambda: concurrent.generate(prompts, n=args.samples, **sampling), args.repeats
                ),
                "sequential": median_seconds(
                    lambda: sequential.generate(prompts, n=args.samples, **sampling), args.repeats
                ),
            }
        fastest = min(http.values())
        for name, seconds in http.items():
            print(
                f"http {name:<20} {seconds:8.3f} s  {rows / seconds:8.1f} samples/s  "
                f"{seconds / fastest:5.1f}x the fastest"
            )
        assert concurrent.failures == sequential.failures == 0


if __name__ == "__main__":
    main()
