"""The ama plugin registers its components lazily: importing it pulls in no numpy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corelib import registry

COMPONENTS = {
    "ama/label_model": ("aggregators", "plugins.ama.label_model:LabelModel"),
    "ama/majority": ("aggregators", "plugins.ama.majority:MajorityVote"),
    "ama/metal_label_model": ("aggregators", "plugins.ama.metal:MetalLabelModel"),
    "ama/chain": ("prompt_generators", "plugins.ama.chains:PromptChain"),
    "ama/task": ("prompt_generators", "plugins.ama.task:ChainTask"),
    "ama/reformulations": ("prompt_generators", "plugins.ama.reformulate:Reformulations"),
}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_components_are_registered_by_reference_and_load(name: str) -> None:
    entry = registry.entry(name)
    assert (entry.group, entry.target) == COMPONENTS[name]
    assert entry.load().__name__ == entry.target.rpartition(":")[2]


@pytest.mark.timeout(60)
def test_importing_the_plugin_is_light() -> None:
    code = "import sys, plugins.ama; print(sorted({'numpy', 'torch', 'scipy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
