"""AMA configs: registry names, one shared LLM node, both backends, and `corelib run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from _ama_task import EXAMPLES, task_config

from corelib import instantiate, load_config
from plugins.ama.label_model import LabelModel
from plugins.ama.majority import MajorityVote
from plugins.ama.task import ChainTask
from plugins.llm.testing import serve

pytestmark = pytest.mark.timeout(120)


def check_built(task: ChainTask, aggregator_class: type) -> None:
    assert isinstance(task.aggregator, aggregator_class)
    assert len({id(chain.llm) for chain in task.chains}) == 1  # the shared node, built once
    result = task.run()
    assert result.votes.votes.shape == (len(EXAMPLES), len(task.chains))
    assert np.isin(result.predictions, [0, 1]).all()


@pytest.mark.filterwarnings("ignore:LabelModel.fit. every vote abstains")  # a random tiny LM
def test_config_with_the_transformers_backend(tiny_model_dir: Path) -> None:
    llm = {"_target_": "llm/transformers", "model": str(tiny_model_dir), "device": "cpu"}
    check_built(instantiate(task_config(llm)), LabelModel)


def test_config_with_the_openai_backend(tiny_llm) -> None:
    with serve(tiny_llm) as base_url:
        llm = {"_target_": "llm/openai", "model": "tiny", "base_url": base_url}
        check_built(instantiate(task_config(llm, "ama/majority")), MajorityVote)


@pytest.mark.slow
def test_corelib_run_on_a_yaml_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    llm = {"_target_": "llm/transformers", "model": str(tiny_model_dir), "device": "cpu"}
    path = tmp_path / "ama.yaml"
    path.write_text(yaml.safe_dump(task_config(llm)))
    assert "&" in path.read_text()  # the LLM node is written once, as a YAML anchor
    assert isinstance(load_config(path)["chains"][0]["llm"], dict)
    done = subprocess.run(
        [sys.executable, "-m", "corelib", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=100,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ama/task: {len(EXAMPLES)}x3 votes (")
