"""Cut a model into pipeline stages at named modules.

The model's modules, taken in registration order, form a sequence of units; a cut such as
`"blocks.2"` starts a new stage at that module (descending into `blocks` so that its children
become units). A stage is a view of the model: copies of the root and of the containers that
were descended into, holding the stage's own units (the very same module objects, so training
the stage trains the model) and nothing of the others. In the view a dropped child of an
`nn.ModuleDict` is absent and any other dropped child is `None`; parameter names stay those of
the full model, and the model's forward must skip what is gone, as
`plugins.ddp.models.TransformerLM` does.
"""

from __future__ import annotations

import copy
import difflib
import itertools
from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

__all__ = ["PipelineSplitError", "split_stage", "stage_units"]


class PipelineSplitError(ValueError):
    """Cut points that do not name modules of the model in forward order."""


def stage_units(model: nn.Module, cuts: Sequence[str]) -> list[list[str]]:
    """The units of each stage (`len(cuts) + 1` stages), checking that the cuts name modules in
    forward order."""
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
    return [units[start:end] for start, end in itertools.pairwise(bounds)]


def split_stage(model: nn.Module, cuts: Sequence[str], stage_index: int) -> nn.Module:
    """A view of `model` holding only the modules of stage `stage_index`; `model` is unchanged."""
    stages = stage_units(model, cuts)
    if not 0 <= stage_index < len(stages):
        raise PipelineSplitError(
            f"stage {stage_index} does not exist: {len(cuts)} cuts make {len(stages)} stages"
        )
    return _view(model, "", _prefixes(cuts), set(stages[stage_index]))


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


def _view(module: nn.Module, prefix: str, expand: set[str], keep: set[str]) -> nn.Module:
    view = copy.copy(module)  # shares parameters, buffers and hooks; gets its own children
    view._modules = OrderedDict()
    for name, child in module._modules.items():
        qualified = f"{prefix}{name}"
        if child is not None and qualified in expand:
            view._modules[name] = _view(child, f"{qualified}.", expand, keep)
        elif qualified in keep or child is None:
            view._modules[name] = child
        elif isinstance(module, nn.ModuleList | nn.Sequential):
            raise PipelineSplitError(
                f"cannot leave {qualified!r} out of a {type(module).__name__} without "
                "renumbering the rest; hold pipeline-split layers in an nn.ModuleDict"
            )
        elif not isinstance(module, nn.ModuleDict):
            view._modules[name] = None
    return view
