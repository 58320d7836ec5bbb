r"""Nearest-neighbour initialisation of the latent search (Lahiri et al., ICIP 2019).

Instead of starting the search of :mod:`ctpipe.inpaint.search` from a random latent, draw
a pool of samples ``p_i = G(z_i)`` once (:class:`LatentPool`), and start each image from
the ``z_i`` whose sample best matches its known pixels (:func:`nearest_latents`):

.. math::

    i^* = \arg\min_i \; \| M \odot (y - p_i) \|_1
        + \beta \left( \| M_x \odot (\partial_x y - \partial_x p_i) \|_1
                     + \| M_y \odot (\partial_y y - \partial_y p_i) \|_1 \right),

the *data loss* on known pixels plus ``beta`` times the *structure loss* on the
horizontal and vertical finite differences, counted only where both pixels of a
difference are known (``M_x``, ``M_y``).

Example:
    >>> import torch
    >>> from ctpipe.nets.dcgan import DCGANGenerator
    >>> g = DCGANGenerator(latent_size=8, features=4, image_size=16).eval()
    >>> pool = LatentPool.from_generator(g, 64, seed=0)
    >>> target = pool.images[[5, 9]]
    >>> known = torch.ones_like(target)
    >>> known[..., 4:12, 4:12] = 0
    >>> nearest_latents(pool, target, known).index.tolist()
    [5, 9]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LatentPool", "PoolMatch", "nearest_latents"]


@dataclass(frozen=True)
class LatentPool:
    """Latents and their generated images, drawn once per generator.

    Args:
        z: ``(N, latent_size)`` latents.
        images: ``(N, 1, S, S)`` their images ``G(z)`` (generator in eval mode).
        seed: The seed the latents were drawn with (``None`` when given).
        seconds: Time taken to draw the pool.
    """

    z: torch.Tensor
    images: torch.Tensor
    seed: int | None = None
    seconds: float = 0.0

    @classmethod
    def from_generator(
        cls, generator: torch.nn.Module, size: int, *, seed: int = 0, batch_size: int = 256
    ) -> LatentPool:
        """Draw ``size`` standard normal latents (seeded) and generate their images.

        Raises:
            ValueError: If ``size`` is below 1.
        """
        import time

        from ctpipe.inpaint.search import frozen_eval

        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        start = time.perf_counter()
        device = next(generator.parameters()).device
        latent_size = int(generator.config["latent_size"])  # type: ignore[index]
        z = torch.randn(size, latent_size, generator=torch.Generator().manual_seed(seed))
        with frozen_eval(generator), torch.no_grad():
            images = torch.cat(
                [
                    generator(z[i : i + batch_size].to(device)).cpu()
                    for i in range(0, size, batch_size)
                ]
            )
        return cls(z, images, seed, time.perf_counter() - start)

    def __len__(self) -> int:
        return int(self.z.shape[0])


@dataclass(frozen=True)
class PoolMatch:
    """The pool sample chosen for each image.

    Args:
        z: ``(B, latent_size)`` the chosen latents (copies).
        index: ``(B,)`` their indices in the pool.
        data_loss: ``(B,)`` data loss of the chosen samples.
        structure_loss: ``(B,)`` structure loss of the chosen samples.
    """

    z: torch.Tensor
    index: torch.Tensor
    data_loss: torch.Tensor
    structure_loss: torch.Tensor


def nearest_latents(
    pool: LatentPool,
    images: torch.Tensor,
    known: torch.Tensor,
    *,
    structure_weight: float = 1.0,
) -> PoolMatch:
    """For each image, the pool latent with the lowest data + structure loss.

    Each image's losses against the whole pool are L1 distances between its known pixels
    (and its known finite differences) and the pool's at the same places, computed with
    ``torch.cdist(p=1)`` on those entries only.

    Args:
        pool: The samples to choose from.
        images: ``(B, 1, S, S)`` corrupted images in [-1, 1].
        known: ``(B, 1, S, S)``, 1 on known pixels.
        structure_weight: ``beta``, the weight of the gradient (structure) loss.

    Returns:
        The chosen latents, their indices and both loss terms.

    Raises:
        ValueError: On shape mismatch or a negative ``structure_weight``.
    """
    if images.shape != known.shape or images.shape[1:] != pool.images.shape[1:]:
        raise ValueError(
            f"images and known must be (B, {', '.join(map(str, pool.images.shape[1:]))}), got "
            f"{tuple(images.shape)} and {tuple(known.shape)}"
        )
    if structure_weight < 0:
        raise ValueError(f"structure_weight must be >= 0, got {structure_weight!r}")
    samples = pool.images[:, 0].float()
    flat = {
        "data": samples.flatten(1),
        "dx": samples.diff(dim=-2).flatten(1),
        "dy": samples.diff(dim=-1).flatten(1),
    }
    data_rows, structure_rows = [], []
    for y, m in zip(
        images.detach().cpu().float()[:, 0], known.detach().cpu()[:, 0] > 0.5, strict=True
    ):
        where = {
            "data": m.flatten(),
            "dx": (m[1:, :] & m[:-1, :]).flatten(),
            "dy": (m[:, 1:] & m[:, :-1]).flatten(),
        }
        values = {
            "data": y.flatten(),
            "dx": y.diff(dim=-2).flatten(),
            "dy": y.diff(dim=-1).flatten(),
        }
        loss = {
            key: torch.cdist(values[key][where[key]][None], flat[key][:, where[key]], p=1)[0]
            for key in flat
        }
        data_rows.append(loss["data"])
        structure_rows.append(loss["dx"] + loss["dy"])
    data, structure = torch.stack(data_rows), torch.stack(structure_rows)
    index = (data + structure_weight * structure).argmin(dim=1)
    rows = torch.arange(len(index))
    return PoolMatch(
        z=pool.z[index].clone(),
        index=index,
        data_loss=data[rows, index],
        structure_loss=structure[rows, index],
    )
