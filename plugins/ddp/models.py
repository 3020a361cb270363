"""Toy models and their synthetic data, for tests, examples and benchmarks.

`TransformerLM` is a small GPT-style language model whose submodules have stable, plain names
(`embed`, `blocks.<i>.attn.q`, `blocks.<i>.mlp.fc`, `norm`, `head`) so that tensor-parallel plans
and pipeline cuts can name them. Its forward skips parts that a pipeline split removed: a
`None` top-level module or a missing block.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

__all__ = ["MLP", "TransformerLM", "lm_loss", "markov_tokens"]


class Embedding(nn.Module):
    """Token plus learned position embedding."""

    def __init__(self, vocab_size: int, dim: int, max_seq_len: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_seq_len, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.tok(tokens) + self.pos(positions)


class Attention(nn.Module):
    """Causal multi-head self-attention with separate q/k/v projections.

    Separate projections shard cleanly by heads under a column-wise plan; the number of local
    heads is read off the projected width, so the same code runs sharded and unsharded.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim={dim} is not divisible by n_heads={n_heads}")
        self.head_dim = dim // n_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq = x.shape[:2]
        q, k, v = (
            proj(x).view(batch, seq, -1, self.head_dim).transpose(1, 2)
            for proj in (self.q, self.k, self.v)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, seq, -1))


class FeedForward(nn.Module):
    """Two-layer GELU MLP: `fc` widens, `proj` projects back."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class TransformerLM(nn.Module):
    """A GPT-style causal language model: tokens (batch, seq) -> logits (batch, seq, vocab)."""

    def __init__(
        self,
        vocab_size: int = 64,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        max_seq_len: int = 64,
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        self.embed: nn.Module | None = Embedding(vocab_size, dim, max_seq_len)
        self.blocks = nn.ModuleDict(
            {str(i): Block(dim, n_heads, mlp_ratio) for i in range(n_layers)}
        )
        self.norm: nn.Module | None = nn.LayerNorm(dim)
        self.head: nn.Module | None = nn.Linear(dim, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) if self.embed is not None else tokens
        for block in self.blocks.values():
            h = block(h)
        if self.norm is not None:
            h = self.norm(h)
        return self.head(h) if self.head is not None else h


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of logits (batch, seq, vocab) against targets (batch, seq)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


class MLP(nn.Sequential):
    """`depth` linear layers with ReLU between them: in_dim -> hidden ... -> out_dim."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, depth: int = 3) -> None:
        dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(dims)):
            layers.append(nn.Linear(n_in, n_out))
            if i < depth - 1:
                layers.append(nn.ReLU())
        super().__init__(*layers)


def markov_tokens(
    n_sequences: int = 256,
    seq_len: int = 32,
    vocab_size: int = 64,
    *,
    seed: int = 0,
    sample_seed: int = 0,
) -> TensorDataset:
    """Sequences drawn from a random bigram chain: pairs (tokens, next tokens).

    `seed` fixes the chain; `sample_seed` draws an independent sample of it (use another one for
    validation data). Each token has a few likely successors, so a model can learn the chain and
    the loss falls well below log(vocab_size). The same arguments always give the same data.
    """
    logits = torch.randn(vocab_size, vocab_size, generator=torch.Generator().manual_seed(seed))
    transitions = torch.softmax(logits * 3.0, dim=-1)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + sample_seed + 1)
    tokens = torch.empty(n_sequences, seq_len + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(vocab_size, (n_sequences,), generator=gen)
    for t in range(seq_len):
        tokens[:, t + 1] = torch.multinomial(transitions[tokens[:, t]], 1, generator=gen).squeeze(1)
    return TensorDataset(tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous())
