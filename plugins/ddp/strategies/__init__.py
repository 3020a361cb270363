"""Training strategies: one small interface (:class:`Strategy`) for every kind of parallelism."""

from plugins.ddp.strategies._base import LossFn, OptimizerFactory, ReduceOp, Strategy, best_device

__all__ = ["LossFn", "OptimizerFactory", "ReduceOp", "Strategy", "best_device"]
