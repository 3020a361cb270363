"""How fast this machine is right now: one training step of the main job's reasoner.

One process, one thread, the main job's model and batch (16 blocks of 160 tokens), AdamW and
gradient clipping; prints the mean seconds per step over ``--steps`` steps after 3 warm-up
steps. Run it next to a timing of the main job to tell a slow machine from slow code.

    PYTHONPATH=. python benchmarks/reasoner_step.py runs/reasoning
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from examples.reasoning.lm import TokenBlocks, next_token_loss, tiny_gpt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a main-job run directory (its tokenizer, data)")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = str(args.run_dir / "reasoner" / "tokenizer")
    model = tiny_gpt(tokenizer, n_layer=4, n_embd=64, n_head=4, n_positions=256, dropout=0.0)
    data = TokenBlocks(str(args.run_dir / "data" / "train.jsonl"), tokenizer, block_size=160)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(index: int) -> None:
        rows = slice(16 * index, 16 * index + 16)
        loss = next_token_loss(model(input_ids=data.inputs[rows]), data.targets[rows])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for index in range(3):
        step(index)
    start = time.perf_counter()
    for index in range(args.steps):
        step(index)
    print(f"{(time.perf_counter() - start) / args.steps:.3f} s per step")


if __name__ == "__main__":
    main()
