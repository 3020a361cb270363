"""The greeter component: the smallest useful thing a config can build and run."""

from __future__ import annotations


class Greeter:
    """Greets someone; ``corelib run`` calls ``run()`` and prints the greeting."""

    def __init__(self, name: str = "world", *, punctuation: str = "!") -> None:
        self.name = name
        self.punctuation = punctuation

    def run(self) -> str:
        """Return the greeting."""
        return f"Hello, {self.name}{self.punctuation}"
