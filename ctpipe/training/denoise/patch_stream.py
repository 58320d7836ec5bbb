"""Training batches as a pure function of the iteration: resumable exactly, balanced by group.

A :class:`PatchStream` draws batch ``n`` from a generator seeded with ``(seed, rank, n)``:
which slices (weighted, so that groups such as reconstruction kernels or real and
simulated pairs take fixed shares of the batch), then the patches, flips and rotations of
each slice (:func:`ctpipe.training.denoise.patches.patch_transforms`, seeded from the same
generator).
Nothing depends on what was drawn before, so a run resumed at iteration ``n`` sees exactly
the batches an uninterrupted run would have seen, whatever the data loader's position.

Iterating a stream starts at ``start()`` (the trainer's iteration when it starts, 0 or the
resumed one) and never ends; the trainer's ``epoch_length`` sets the epochs.

Example:
    >>> import torch
    >>> from ctpipe.training.denoise.config import PatchConfig
    >>> slices = [{"image": torch.rand(1, 16, 16), "label": torch.rand(1, 16, 16)}
    ...           for _ in range(3)]
    >>> stream = PatchStream(slices, [1, 1, 2], PatchConfig(size=(8, 8), per_slice=2),
    ...                      batch_size=4, seed=0)
    >>> batch = stream.batch(7)
    >>> tuple(batch["image"].shape), torch.equal(batch["image"], stream.batch(7)["image"])
    ((4, 1, 8, 8), True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from ctpipe.training.denoise.config import PatchConfig

__all__ = ["PatchStream", "group_weights"]


def group_weights(groups: Sequence[str], shares: Mapping[str, float] | None = None) -> np.ndarray:
    """Sampling weights of items so that each group takes its share of the draws.

    Args:
        groups: The group of each item (e.g. ``"real/D45"``, ``"simulated/B30"``).
        shares: Relative share of each group; a group not named weighs 1, so ``None``
            gives every group an equal share. Shares are normalised over the groups present.

    Returns:
        Probabilities, one per item, summing to 1; items of one group are equally likely.

    Raises:
        ValueError: If ``groups`` is empty, or a share is negative or names no group.

    Example:
        >>> group_weights(["a", "a", "a", "b"]).round(3).tolist()
        [0.167, 0.167, 0.167, 0.5]
        >>> group_weights(["a", "b", "b"], {"a": 3}).round(3).tolist()
        [0.75, 0.125, 0.125]
    """
    if not groups:
        raise ValueError("group_weights needs at least one item")
    names = sorted(set(groups))
    shares = dict(shares or {})
    unknown = sorted(set(shares) - set(names))
    if unknown:
        raise ValueError(f"shares name groups that have no items: {unknown} (groups: {names})")
    if any(v < 0 for v in shares.values()):
        raise ValueError(f"shares must be >= 0, got {shares}")
    shares = {g: float(shares.get(g, 1.0)) for g in names}
    total = sum(shares.values())
    if total <= 0:
        raise ValueError(f"shares must not all be 0, got {shares}")
    counts = {g: groups.count(g) for g in names}
    weights = np.array([shares[g] / total / counts[g] for g in groups], dtype=np.float64)
    return weights / weights.sum()


class PatchStream:
    """An endless stream of training batches; batch ``n`` depends only on ``(seed, rank, n)``.

    Args:
        slices: Whole slices, dicts with ``"image"`` and ``"label"`` tensors ``(1, H, W)``
            (e.g. the items of a ``CacheDataset`` of
            :func:`ctpipe.training.denoise.data.slice_transforms`).
        weights: Relative chance of each slice being drawn (see :func:`group_weights`).
        patches: Patch size, patches per slice and augmentation.
        batch_size: Patches per batch, a multiple of ``patches.per_slice``.
        seed: The run's seed.
        rank: This process's rank (each rank draws its own batches).
        start: Called when iteration starts; returns the first batch number (the
            trainer's iteration, so a resumed run goes on where it stopped).

    Raises:
        ValueError: On an empty ``slices``, weights of another length or not positive in
            sum, or a ``batch_size`` that is not a multiple of ``patches.per_slice``.
    """

    def __init__(
        self,
        slices: Sequence[Mapping[str, torch.Tensor]],
        weights: Sequence[float],
        patches: PatchConfig,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        start: Callable[[], int] = lambda: 0,
    ) -> None:
        from ctpipe.training.denoise.patches import patch_transforms

        weights = np.asarray(weights, dtype=np.float64)
        if not len(slices):
            raise ValueError("PatchStream needs at least one slice")
        if weights.shape != (len(slices),) or not weights.sum() > 0 or (weights < 0).any():
            raise ValueError(
                f"weights must be {len(slices)} non-negative numbers with a positive sum, "
                f"got shape {weights.shape}"
            )
        if batch_size % patches.per_slice:
            raise ValueError(
                f"batch_size must be a multiple of patches.per_slice, got {batch_size} and "
                f"{patches.per_slice}"
            )
        self.slices = slices
        self.probabilities = weights / weights.sum()
        self.chain = patch_transforms(patches)
        self.slices_per_batch = batch_size // patches.per_slice
        self.seed = seed
        self.rank = rank
        self.start = start

    def batch(self, number: int) -> dict[str, torch.Tensor]:
        """Batch ``number``: ``"image"`` and ``"label"`` tensors ``(batch_size, 1, h, w)``."""
        import torch

        rng = np.random.default_rng([self.seed, self.rank, number])
        picks = rng.choice(len(self.slices), size=self.slices_per_batch, p=self.probabilities)
        images, labels = [], []
        for index in picks:
            self.chain.set_random_state(seed=int(rng.integers(2**31)))
            item = self.slices[int(index)]
            for patch in self.chain({"image": item["image"], "label": item["label"]}):
                images.append(torch.as_tensor(patch["image"]))
                labels.append(torch.as_tensor(patch["label"]))
        return {"image": torch.stack(images), "label": torch.stack(labels)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        number = int(self.start())
        while True:
            yield self.batch(number)
            number += 1
