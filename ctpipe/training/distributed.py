"""The process group of a ``torchrun`` launch, and the device of each process.

``torchrun --nproc_per_node N`` starts N processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in each. :func:`setup_distributed` reads them; with ``WORLD_SIZE`` above 1
it joins the default process group (``nccl`` on CUDA, ``gloo`` on the CPU) and gives each
process its device (``cuda:LOCAL_RANK`` on CUDA). Without those variables it is a single
process on the configured device.

Example:
    >>> context = setup_distributed("cpu")  # no torchrun variables: one process
    >>> context.world_size, context.is_main, str(context.device)
    (1, True, 'cpu')
    >>> context.close()
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["DistributedContext", "setup_distributed", "sharded_loaders"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Args:
        rank: Global rank of this process (0 for a single process).
        world_size: Number of processes.
        local_rank: Rank on this machine (selects the GPU).
        device: The device this process computes on.
        owns_group: Whether :func:`setup_distributed` created the process group (and
            :meth:`close` destroys it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes checkpoints, logs and plots."""
        return self.rank == 0

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group (if any) and choose this process's device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. Under
            ``torchrun`` with CUDA, each process takes ``cuda:LOCAL_RANK`` instead of N.

    Returns:
        The rank, world size and device of this process.

    Raises:
        ValueError: If ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` are not integers, or CUDA is
            asked for but not available.
    """
    import torch
    import torch.distributed as dist

    rank = _env_int("RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    chosen = _device(device, local_rank if world_size > 1 else None)
    owns_group = False
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
        owns_group = True
    if world_size > 1:
        _sync_ignite()
    return DistributedContext(rank, world_size, local_rank, chosen, owns_group)


def sharded_loaders(
    train_set: Any,
    val_set: Any,
    *,
    batch_size: int,
    num_workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[Any, Any]:
    """Training and validation ``DataLoader`` objects, each process taking its share.

    The training loader shuffles anew each epoch and drops the last incomplete batch;
    under ``torchrun`` a ``DistributedSampler`` gives each process its share of the items.
    The validation loader yields items one at a time; under ``torchrun`` each process
    validates its share (MONAI's metrics gather the scores of all processes), or all of
    them when there are fewer items than processes.

    Returns:
        ``(train_loader, validation_loader)``; the latter is ``None`` without ``val_set``.

    Example:
        >>> train, val = sharded_loaders(list(range(10)), None, batch_size=4, num_workers=0,
        ...                              seed=0)
        >>> len(train), val
        (2, None)
    """
    from monai.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    sampler = (
        DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        if world_size > 1
        else None
    )
    train_loader = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=True,
        persistent_workers=num_workers > 0,
    )
    if val_set is None:
        return train_loader, None
    return train_loader, validation_loader(val_set, num_workers, rank, world_size)


def validation_loader(val_set: Any, num_workers: int, rank: int = 0, world_size: int = 1) -> Any:
    """Validation items one at a time; each ``torchrun`` process takes its share.

    With fewer items than processes, every process takes all of them.

    Example:
        >>> [int(x) for x in validation_loader([1, 2, 3], num_workers=0)]
        [1, 2, 3]
    """
    from monai.data import DataLoader

    val_sampler = None
    if world_size > 1 and len(val_set) >= world_size:
        from monai.data import DistributedSampler as UnevenSampler

        val_sampler = UnevenSampler(
            val_set, even_divisible=False, num_replicas=world_size, rank=rank, shuffle=False
        )
    return DataLoader(
        val_set, batch_size=1, shuffle=False, sampler=val_sampler, num_workers=num_workers
    )


def _sync_ignite() -> None:
    """Let ignite (under MONAI's engines) see the process group now, on every rank.

    ignite learns the process group lazily, on its first distributed call, and that first
    call runs collectives (it gathers the ranks of each node). Made by rank 0 alone (when
    its checkpoint saver starts), it would wait forever for the other ranks.
    """
    try:
        import ignite.distributed as idist
    except ImportError:  # pragma: no cover - ignite comes with ctpipe's training extra
        return
    idist.get_world_size()


def _device(setting: str, local_rank: int | None) -> torch.device:
    import torch

    from ctpipe.devices import compute_device

    setting = compute_device(setting)
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device is {setting!r} but CUDA is not available")
        if local_rank is not None:
            return torch.device("cuda", local_rank)
    return torch.device(setting)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {text!r}") from None
