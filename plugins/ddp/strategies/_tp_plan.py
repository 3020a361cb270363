"""Tensor-parallel plans given as data: module-name patterns mapped to parallel styles.

A plan is a mapping such as::

    {"blocks.*.attn.q": "colwise", "blocks.*.attn.out": "rowwise",
     "norm": {"style": "sequence_parallel"},
     "head": {"style": "colwise", "input_layouts": "shard(1)", "output_layouts": "replicate"}}

Keys are dotted module names in which `*` stands for one whole name segment. Values are a style
name or a dict with `style` plus that style's keyword arguments; layouts are written
`"replicate"`, `"shard(D)"` or null, or a list of those for multi-input modules.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import Placement, Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    PrepareModuleOutput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)
from torch.distributed.tensor.parallel.style import ParallelStyle

from plugins.ddp._module_patterns import matches

__all__ = [
    "STYLES",
    "ParallelizeFn",
    "TPPlanError",
    "check_plan_source",
    "parallelize",
    "remove_parallel_hooks",
    "resolve_plan",
]

ParallelizeFn = Callable[[nn.Module, DeviceMesh], "nn.Module | None"]

STYLES: dict[str, Callable[..., ParallelStyle]] = {
    "colwise": ColwiseParallel,
    "rowwise": RowwiseParallel,
    "sequence_parallel": SequenceParallel,
    "prepare_input": PrepareModuleInput,
    "prepare_output": PrepareModuleOutput,
}

_LAYOUT_KEYS = frozenset(
    {
        "input_layouts",
        "output_layouts",
        "desired_input_layouts",
        "desired_output_layouts",
        "input_kwarg_layouts",  # these two map keyword names to layouts
        "desired_input_kwarg_layouts",
    }
)
_SHARD = re.compile(r"shard\((-?\d+)\)")
_TP_PACKAGE = "torch.distributed.tensor."  # where parallelize_module's hooks are defined


class TPPlanError(ValueError):
    """A tensor-parallel plan that does not fit the model: bad key, style or layout."""


def resolve_plan(model: nn.Module, plan: Mapping[str, Any]) -> dict[str, ParallelStyle]:
    """Expand `plan`'s patterns against `model`'s module names and build each style.

    Returns concrete module names mapped to style objects, in the model's module order, ready for
    `parallelize_module`. Every pattern must match at least one module, and no module may be
    matched by two patterns.
    """
    names = [name for name, _ in model.named_modules() if name]
    resolved: dict[str, ParallelStyle] = {}
    claimed_by: dict[str, str] = {}
    for pattern, spec in plan.items():
        style = _build_style(pattern, spec)
        found = [name for name in names if matches(pattern, name)]
        if not found:
            raise TPPlanError(_no_match_message(pattern, names, type(model).__name__))
        for name in found:
            if name in claimed_by:
                raise TPPlanError(
                    f"TP plan: module {name!r} is matched by both {claimed_by[name]!r} "
                    f"and {pattern!r}; give each module one style"
                )
            claimed_by[name] = pattern
            resolved[name] = style
    return {name: resolved[name] for name in names if name in resolved}


def _no_match_message(pattern: str, names: list[str], model_name: str) -> str:
    generalised = list(dict.fromkeys(re.sub(r"(?<=\.)\d+(?=\.|$)", "*", n) for n in names))
    similar = difflib.get_close_matches(pattern, generalised, n=5, cutoff=0.6)
    hint = (
        "similar module names: " + ", ".join(similar)
        if similar
        else "module names look like: " + ", ".join(generalised[:8])
    )
    return f"TP plan key {pattern!r} matches no module of {model_name}; {hint}"


def _build_style(pattern: str, spec: Any) -> ParallelStyle:
    if isinstance(spec, ParallelStyle):
        return spec
    if isinstance(spec, str):
        spec = {"style": spec}
    if not isinstance(spec, Mapping) or "style" not in spec:
        raise TPPlanError(
            f"TP plan[{pattern!r}]: expected a style name or a mapping with 'style', got {spec!r}"
        )
    options = dict(spec)
    name = options.pop("style")
    if name not in STYLES:
        raise TPPlanError(
            f"TP plan[{pattern!r}]: unknown style {name!r}; expected one of {sorted(STYLES)}"
        )
    kwargs = {
        key: _layouts(pattern, key, value) if key in _LAYOUT_KEYS else value
        for key, value in options.items()
    }
    try:
        return STYLES[name](**kwargs)
    except TypeError as exc:
        raise TPPlanError(f"TP plan[{pattern!r}]: bad options for style {name!r}: {exc}") from exc


def _layouts(pattern: str, key: str, value: Any) -> Any:
    """A layout, a tuple of layouts (from a list), or keyword names to layouts (from a map)."""
    if isinstance(value, Mapping):
        return {name: _placement(pattern, f"{key}.{name}", item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_placement(pattern, key, item) for item in value)
    return _placement(pattern, key, value)


def _placement(pattern: str, key: str, value: Any) -> Placement | None:
    if value is None or isinstance(value, Placement):
        return value
    text = str(value).strip().lower()
    if text == "replicate":
        return Replicate()
    shard = _SHARD.fullmatch(text)
    if shard:
        return Shard(int(shard.group(1)))
    raise TPPlanError(
        f"TP plan[{pattern!r}].{key}: unknown layout {value!r}; "
        "expected 'replicate', 'shard(D)' or null"
    )


def parallelize(
    model: nn.Module,
    mesh: DeviceMesh,
    plan: Mapping[str, Any] | None,
    parallelize_fn: ParallelizeFn | None,
) -> nn.Module:
    """Apply `plan` (resolved against `model`) or call `parallelize_fn(model, mesh)`.

    `parallelize_fn` may return the parallelized module or `None` when it works in place.
    """
    if parallelize_fn is not None:
        result = parallelize_fn(model, mesh)
        return model if result is None else result
    if not plan:
        raise TPPlanError("tensor parallelism needs a non-empty plan or a parallelize_fn")
    return parallelize_module(model, mesh, resolve_plan(model, plan))


def check_plan_source(plan: Mapping[str, Any] | None, parallelize_fn: object) -> None:
    """Raise unless exactly one of `plan` and `parallelize_fn` is given."""
    if (plan is None) == (parallelize_fn is None):
        raise TPPlanError("give exactly one of plan (a mapping) and parallelize_fn (a callable)")
    if parallelize_fn is not None and not callable(parallelize_fn):
        raise TPPlanError(f"parallelize_fn must be callable (model, mesh); got {parallelize_fn!r}")


def remove_parallel_hooks(model: nn.Module) -> None:
    """Drop the input and output hooks that tensor parallelism put on `model`'s modules, so that
    once its parameters are plain again it runs as an ordinary module (without a process group).
    """
    for module in model.modules():
        for hooks, extras in [
            (module._forward_pre_hooks, [module._forward_pre_hooks_with_kwargs]),
            (module._forward_hooks, [module._forward_hooks_with_kwargs]),
        ]:
            for key in [key for key, hook in hooks.items() if _from_tensor_parallel(hook)]:
                del hooks[key]
                for extra in extras:
                    extra.pop(key, None)


def _from_tensor_parallel(hook: object) -> bool:
    function = getattr(hook, "func", hook)  # functools.partial or a plain callable
    function = getattr(function, "__func__", function)  # a bound method
    return getattr(function, "__module__", "").startswith(_TP_PACKAGE)
