"""The main job's config: one ``seed`` node reseeds its data, model, trainer and sampling."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `examples` is not an installed package
    sys.path.insert(0, str(ROOT))

from corelib import apply_overrides, instantiate, load_config  # noqa: E402
from examples.reasoning.pipeline import StageContext  # noqa: E402

CONFIG = ROOT / "examples" / "reasoning" / "config.py"


def _train_split(cfg: Any, run_dir: Path) -> str:
    """The training problems the config's data stage writes, at a small size."""
    instantiate(cfg["data"], train=30, val=4, test=4).run(StageContext(run_dir, "data"))
    return (run_dir / "data" / "train.jsonl").read_text()


def test_one_override_reseeds_every_seeded_part_of_the_main_job(tmp_path: Path) -> None:
    cfg = load_config(CONFIG)
    reseeded = apply_overrides(cfg, ["seed.value=1"])
    reasoner = reseeded["reasoner"]
    for part in (
        reseeded["data"],
        reasoner["trainer"],  # the trainer's own generator (data order)
        reasoner["model"],  # the model's initialisation
        reasoner["data"],  # the token blocks' order
        reseeded["paths"]["prompts"],  # exemplar sets and sampling
    ):
        assert part["seed"] is reseeded["seed"]
    assert instantiate(reseeded["seed"]) == 1 and instantiate(cfg["seed"]) == 0

    seed0 = _train_split(cfg, tmp_path / "a")
    assert _train_split(load_config(CONFIG), tmp_path / "b") == seed0  # same seed, same data
    assert _train_split(reseeded, tmp_path / "c") != seed0
