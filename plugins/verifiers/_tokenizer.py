"""A small local tokenizer for the verifier: words, single digits and punctuation.

Digits are separate tokens so that numbers never fall out of the vocabulary; the vocabulary is
built from the training texts (no download).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["CLS", "PAD", "SEP", "STEP", "UNK", "WordTokenizer"]

PAD, UNK, CLS, SEP, STEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[STEP]"
_SPECIALS = (PAD, UNK, CLS, SEP, STEP)
_TOKEN = re.compile(r"\d|[^\W\d_]+|[^\w\s]|_")


class WordTokenizer:
    """Lower-cased words, digits and punctuation mapped to ids; unknown tokens map to UNK."""

    def __init__(self, vocab: list[str]) -> None:
        if tuple(vocab[: len(_SPECIALS)]) != _SPECIALS:
            raise ValueError(f"WordTokenizer: the vocabulary must start with {list(_SPECIALS)}")
        self.vocab = list(vocab)
        self._ids = {token: i for i, token in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], *, min_count: int = 1) -> WordTokenizer:
        """A vocabulary of every token seen at least ``min_count`` times (most frequent first)."""
        counts = Counter(token for text in texts for token in cls.split(text))
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([*_SPECIALS, *(token for token, c in ordered if c >= min_count)])

    @staticmethod
    def split(text: str) -> list[str]:
        """The tokens of ``text`` (lower-cased)."""
        return _TOKEN.findall(text.lower())

    def id(self, token: str) -> int:
        """The id of ``token`` (UNK's id where it is unknown)."""
        return self._ids.get(token, self._ids[UNK])

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""
        return [self.id(token) for token in self.split(text)]

    def __len__(self) -> int:
        return len(self.vocab)
