"""``ddp/single``: one process, one device."""

from __future__ import annotations

from plugins.ddp.strategies._base import Strategy

__all__ = ["SingleDevice"]


class SingleDevice(Strategy):
    """Train in this process alone on one device (``None``: its GPU if any, else the CPU)."""

    component_name = "ddp/single"

    def setup(self) -> None:
        """Select the device; refuse to run as one of several launched ranks."""
        if self.is_distributed:
            raise RuntimeError(
                f"ddp/single trains in one process, but this is rank {self.rank} of "
                f"WORLD_SIZE={self.world_size}: use ddp/ddp or ddp/fsdp2 under torchrun, "
                "or launch one process"
            )
        super().setup()
