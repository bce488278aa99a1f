"""Data-parallel training across processes (``torchrun``): who this process is, and what it shares.

Every process holds the whole model and identical devices (the same seeds give the same random
streams, so no device state is ever communicated). A global batch of B examples is split into
equal shares of B / world_size, in rank order; the gradients are averaged by PyTorch's
DistributedDataParallel, batch-norm statistics span the global batch
(``rramk.nn.GlobalBatchNormLayer``), and after each step one all-reduce sums the step's
statistics and tells every process whether any of them was interrupted, so that all stop at
the same step. A single process (WORLD_SIZE unset or 1) does none of this.
"""

from __future__ import annotations

import dataclasses
import os

import torch


@dataclasses.dataclass
class Distributed:
    """This process's place in the process group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """The process that writes files and prints."""
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group that torchrun describes (WORLD_SIZE > 1), else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def batch_share(dist_info: Distributed, indices: torch.Tensor) -> torch.Tensor:
    """This process's equal share of a global batch's indices (all of them for one process).

    The batch size must split over the processes (the last, short batch too); the trainer checks.
    """
    if not dist_info.active:
        return indices
    share = len(indices) // dist_info.world_size
    return indices[dist_info.rank * share:(dist_info.rank + 1) * share]


def reduce_step(dist_info: Distributed, loss_sum: float, correct: int, seen: int, stop: bool,
                device: torch.device) -> tuple[float, int, int, bool]:
    """One step's (summed loss, correct predictions, examples) over the global batch, and whether
    any process asked to stop, in one all-reduce; a single process gets its own values back."""
    if not dist_info.active:
        return loss_sum, correct, seen, stop
    import torch.distributed as dist

    totals = torch.tensor([loss_sum, correct, seen, float(stop)], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals[0].item(), int(totals[1].item()), int(totals[2].item()), totals[3].item() > 0
