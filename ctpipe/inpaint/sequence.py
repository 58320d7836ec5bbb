r"""Slice-sequence inpainting: z reuse and group consistency (Lahiri et al., ICIP 2019).

A CT volume's axial slices are the frames of a video: the same hole position changes
little from one slice to the next. Following the paper's video inpainting,
:func:`inpaint_sequence` searches a first group of frames in full (``first_group`` frames
from ``z_first``, e.g. pool matches of :mod:`ctpipe.inpaint.init`; one *key frame* is
the cheapest), cuts the rest into consecutive groups of ``W`` and

* **reuses latents**: every frame of a later group starts from the best latent of the
  previous group's last frame, and may run a short *follow* search (``follow``
  settings, e.g. 20 steps) instead of a full one;
* optimises the frames of a group **jointly**, adding to each frame's context and prior
  losses a **group consistency loss**: ``gamma`` times the L1 difference between its
  generated image and the previous frame's, over the pixels in either frame's hole,

  .. math:: L_{gc}(z_t) = \gamma \, \| (1 - M_t M_{t-1}) \odot (G(z_t) - G(z_{t-1})) \|_1,

  where the previous frame of a group's first frame is the previous group's result
  (fixed). This keeps the fills of neighbouring slices from flickering.

Example:
    >>> import torch
    >>> from ctpipe.nets.dcgan import DCGANGenerator
    >>> from ctpipe.inpaint.search import SearchSettings
    >>> g = DCGANGenerator(latent_size=8, features=4, image_size=16).eval()
    >>> frames = g(torch.randn(1, 8)).detach().repeat(5, 1, 1, 1)
    >>> known = torch.ones_like(frames)
    >>> known[..., 5:11, 5:11] = 0
    >>> out = inpaint_sequence(g, None, frames, known, torch.randn(1, 8),
    ...                        SearchSettings(iterations=3), group_size=2, first_group=1)
    >>> out.generated.shape, [size for _, size, _ in out.groups]
    (torch.Size([5, 1, 16, 16]), [1, 2, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ctpipe.inpaint.search import SearchSettings, latent_search

__all__ = ["SequenceResult", "group_consistency", "inpaint_sequence"]


def group_consistency(
    generated: torch.Tensor,
    known: torch.Tensor,
    previous: torch.Tensor | None = None,
    previous_known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-frame L1 difference to the previous frame over either frame's hole: ``(T,)``.

    Args:
        generated: ``(T, 1, S, S)`` consecutive generated frames.
        known: ``(T, 1, S, S)``, 1 on known pixels.
        previous: ``(1, 1, S, S)`` the frame before the first one (fixed), or ``None``
            (the first frame then has no term).
        previous_known: Its known-pixel mask (``known[:1]`` when ``None``).

    Returns:
        ``(T,)``: term ``t`` compares frame ``t`` with frame ``t - 1``.

    Example:
        >>> g = torch.zeros(3, 1, 2, 2)
        >>> g[1] = 1.0
        >>> group_consistency(g, torch.zeros(3, 1, 2, 2)).tolist()
        [0.0, 4.0, 4.0]
    """
    known = known.float()
    if previous is not None:
        before = torch.cat([previous.to(generated), generated[:-1]])
        before_known = torch.cat(
            [(previous_known if previous_known is not None else known[:1]).to(known), known[:-1]]
        )
    else:
        before = torch.cat([generated[:1], generated[:-1]])
        before_known = torch.cat([known[:1], known[:-1]])
    hole = 1.0 - known * before_known
    return (hole * (generated - before)).abs().flatten(1).sum(dim=1)


@dataclass
class SequenceResult:
    """The inpainted frames of one sequence.

    Args:
        z: ``(T, latent_size)`` each frame's latent.
        generated: ``(T, 1, S, S)`` each frame's ``G(z)``.
        context: ``(T,)`` context loss per frame.
        prior: ``(T,)`` prior loss per frame.
        groups: Per group: ``(first frame, frames, steps run)``.
        seconds: Wall time.
    """

    z: torch.Tensor
    generated: torch.Tensor
    context: torch.Tensor
    prior: torch.Tensor
    groups: list[tuple[int, int, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def iterations(self) -> int:
        """Steps run over all groups (each step advances a whole group)."""
        return sum(steps for _, _, steps in self.groups)


def inpaint_sequence(
    generator: torch.nn.Module,
    discriminator: torch.nn.Module | None,
    frames: torch.Tensor,
    known: torch.Tensor,
    z_first: torch.Tensor,
    settings: SearchSettings | None = None,
    *,
    group_size: int = 4,
    consistency_weight: float = 0.5,
    first_group: int | None = None,
    follow: SearchSettings | None = None,
    callback: Callable[[int, int, torch.Tensor, torch.Tensor], None] | None = None,
) -> SequenceResult:
    """Inpaint consecutive frames with latent reuse and group consistency.

    Args:
        generator: ``z -> image`` in [-1, 1].
        discriminator: For the prior loss (``None``: no prior).
        frames: ``(T, 1, S, S)`` corrupted frames in [-1, 1], in slice order.
        known: ``(T, 1, S, S)``, 1 on known pixels.
        z_first: Latents of the first group: ``(1, latent_size)`` (shared by its frames)
            or ``(min(first_group, T), latent_size)`` (one per frame).
        settings: Settings of the first group's latent search (and of the later groups'
            when ``follow`` is ``None``).
        group_size: ``W``, frames optimised together.
        consistency_weight: ``gamma`` of the group consistency loss (0: none).
        first_group: Frames searched in full from ``z_first`` (``W`` when ``None``).
        follow: Settings of the searches that start from a reused latent.
        callback: Called after each step as ``callback(first_frame, step, z, generated)``.

    Returns:
        Latents, images and losses per frame, and the steps of each group.

    Raises:
        ValueError: Bad shapes, ``group_size`` or ``first_group`` < 1, or a negative
            ``consistency_weight``.
    """
    import time

    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size!r}")
    first_group = group_size if first_group is None else first_group
    if first_group < 1:
        raise ValueError(f"first_group must be >= 1, got {first_group!r}")
    if consistency_weight < 0:
        raise ValueError(f"consistency_weight must be >= 0, got {consistency_weight!r}")
    if frames.shape != known.shape or frames.dim() != 4:
        raise ValueError(
            f"frames and known must both be (T, 1, S, S), got {tuple(frames.shape)} and "
            f"{tuple(known.shape)}"
        )
    count = frames.shape[0]
    first = min(first_group, count)
    if z_first.dim() != 2 or z_first.shape[0] not in (1, first):
        rows = "1" if first == 1 else f"1 or {first}"
        raise ValueError(f"z_first must be ({rows}, latent_size), got {tuple(z_first.shape)}")
    start_time = time.perf_counter()
    zs, images, contexts, priors, groups = [], [], [], [], []
    previous = previous_known = z_previous = None
    for start in [0, *range(first, count, group_size)]:
        stop = first if start == 0 else min(start + group_size, count)
        size = stop - start
        if z_previous is None:
            z_init = z_first.expand(size, -1) if z_first.shape[0] == 1 else z_first[:size]
            search = settings
        else:
            z_init = z_previous.expand(size, -1)
            search = follow or settings
        group_known = known[start:stop]
        extra = None
        if consistency_weight > 0 and (size > 1 or previous is not None):

            def extra(generated, _k=group_known, _p=previous, _pk=previous_known):
                return consistency_weight * group_consistency(generated, _k.to(generated), _p, _pk)

        hook = None
        if callback is not None:

            def hook(step, z, generated, _s=start):
                callback(_s, step, z, generated)

        result = latent_search(
            generator,
            discriminator,
            frames[start:stop],
            group_known,
            z_init.clone(),
            search,
            extra_loss=extra,
            callback=hook,
        )
        zs.append(result.z)
        images.append(result.generated)
        contexts.append(result.context)
        priors.append(result.prior)
        groups.append((start, size, result.iterations))
        z_previous = result.z[-1:].detach()
        previous = result.generated[-1:].detach()
        previous_known = group_known[-1:]
    return SequenceResult(
        z=torch.cat(zs),
        generated=torch.cat(images),
        context=torch.cat(contexts),
        prior=torch.cat(priors),
        groups=groups,
        seconds=time.perf_counter() - start_time,
    )
