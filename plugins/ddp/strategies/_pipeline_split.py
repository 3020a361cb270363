"""Cut a model into pipeline stages at named modules.

The model's modules, taken in registration order, form a sequence of units; a cut such as
`"blocks.2"` starts a new stage at that module (descending into `blocks` so that its children
become units). A stage keeps its own units and drops the rest: a dropped child of a
`ModuleDict` is deleted, any other dropped child is set to `None`. Parameter names therefore
stay those of the full model, and the model's forward must skip what is gone, as
`plugins.ddp.models.TransformerLM` does.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import nn

__all__ = ["PipelineSplitError", "split_stage"]


class PipelineSplitError(ValueError):
    """Cut points that do not name modules of the model in forward order."""


def split_stage(model: nn.Module, cuts: Sequence[str], stage_index: int) -> nn.Module:
    """Keep in `model` (in place) only the modules of stage `stage_index` and return it.

    `cuts` has one module name per stage boundary (`len(cuts) + 1` stages), in forward order.
    """
    units = _units(model, _prefixes(cuts))
    bounds = [0]
    for cut in cuts:
        if cut not in units:
            similar = difflib.get_close_matches(cut, units, n=5, cutoff=0.5)
            raise PipelineSplitError(
                f"pipeline cut {cut!r} names no module of {type(model).__name__}; "
                f"cuts may name: {', '.join(similar or units[:10])}"
            )
        position = units.index(cut)
        if position <= bounds[-1]:
            raise PipelineSplitError(
                f"pipeline cuts {list(cuts)} must be distinct, in forward order, and leave "
                f"the first stage non-empty; modules in order: {', '.join(units)}"
            )
        bounds.append(position)
    bounds.append(len(units))
    if not 0 <= stage_index < len(bounds) - 1:
        raise PipelineSplitError(
            f"stage {stage_index} does not exist: {len(cuts)} cuts make {len(bounds) - 1} stages"
        )
    kept = set(units[bounds[stage_index] : bounds[stage_index + 1]])
    for name in units:
        if name not in kept:
            _drop(model, name)
    return model


def _prefixes(cuts: Sequence[str]) -> set[str]:
    """Module names to descend into: every proper dotted prefix of a cut."""
    return {cut.rsplit(".", depth)[0] for cut in cuts for depth in range(1, cut.count(".") + 1)}


def _units(module: nn.Module, expand: set[str], prefix: str = "") -> list[str]:
    units: list[str] = []
    for name, child in module.named_children():
        qualified = f"{prefix}{name}"
        if qualified in expand:
            units.extend(_units(child, expand, f"{qualified}."))
        else:
            units.append(qualified)
    return units


def _drop(model: nn.Module, name: str) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if isinstance(parent, nn.ModuleDict):
        del parent[attr]
    elif isinstance(parent, nn.ModuleList | nn.Sequential):
        raise PipelineSplitError(
            f"cannot drop {name!r} from a {type(parent).__name__} without renumbering the rest; "
            "hold pipeline-split layers in an nn.ModuleDict"
        )
    else:
        setattr(parent, attr, None)
