"""Latent search (Yeh et al., CVPR 2017): find ``z`` whose ``G(z)`` fits the known pixels.

:func:`latent_search` runs Adam on a batch of latents, minimising for each image the
context loss plus ``prior_weight`` times the prior loss (:mod:`ctpipe.inpaint.losses`),
and keeps each image's best latent (the lowest loss seen). The generator and
discriminator stay in eval mode with their weights frozen: only ``z`` is optimised, and
each image of the batch is independent of the others.

It stops after ``iterations`` steps, or earlier once no image's loss has fallen by more
than ``tolerance`` (relative) over the last ``patience`` steps: a stopping rule that needs
no ground truth. An optional ``extra_loss`` (e.g. the group consistency of
:mod:`ctpipe.inpaint.sequence`) is added per image, and an optional ``callback`` sees
every step (benchmarks trace the error there).

Example:
    >>> import torch
    >>> from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    >>> g = DCGANGenerator(latent_size=8, features=4, image_size=16).eval()
    >>> d = DCGANDiscriminator(features=4, image_size=16).eval()
    >>> target = g(torch.randn(2, 8)).detach()
    >>> known = torch.ones_like(target)
    >>> known[..., 4:12, 4:12] = 0
    >>> result = latent_search(g, d, target, known, torch.randn(2, 8),
    ...                        SearchSettings(iterations=10, lr=0.05))
    >>> bool((result.context < result.initial_context).all()), result.iterations
    (True, 10)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch

from ctpipe.inpaint.losses import WEIGHTINGS, context_loss, context_weights, prior_loss

__all__ = ["SearchResult", "SearchSettings", "frozen_eval", "latent_search"]


@dataclass(frozen=True)
class SearchSettings:
    """Settings of the latent search.

    Args:
        iterations: Most Adam steps on ``z`` (Yeh et al. use 1500).
        lr: Adam's learning rate on ``z``.
        betas: Adam's moment decay rates.
        prior_weight: ``lambda``, the weight of the prior loss (0.003 in Yeh et al.).
        weighting: Context weighting: ``uniform``, ``neighbourhood`` or ``distance``.
        window: Neighbourhood side of ``neighbourhood`` weighting (7 in Yeh et al.).
        distance_scale: Decay length (pixels) of ``distance`` weighting.
        tolerance: Early stop when no image's best loss fell by more than this fraction
            over the last ``patience`` steps; 0 never stops early. At 1 % over 30 steps,
            searches on CT tiles stop after a few hundred steps; at 0.1 % most run to
            ``iterations``.
        patience: Steps the ``tolerance`` rule looks back (it is first checked
            ``patience`` steps after the warm-up).
        warmup: Steps over which the learning rate rises linearly from ``lr / warmup``
            to ``lr`` (0: none, as in Yeh et al.). Adam's first steps move every
            coordinate by about ``lr`` whatever its gradient; a warm-up keeps a good start
            (a pool match) from being thrown off its optimum. On held-out CT tiles, with
            50 steps (and squared-difference pool matching) the pool start reached the
            random start's final context loss 2.0x sooner, against 1.5x before
            (``benchmarks/RESULTS.md``).

    Example:
        >>> SearchSettings(iterations=0)
        Traceback (most recent call last):
        ...
        ValueError: iterations must be >= 1, got 0
    """

    iterations: int = 1000
    lr: float = 0.03
    betas: tuple[float, float] = (0.9, 0.999)
    prior_weight: float = 0.003
    weighting: Literal["uniform", "neighbourhood", "distance"] = "uniform"
    window: int = 7
    distance_scale: float = 8.0
    tolerance: float = 1e-2
    patience: int = 30
    warmup: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        rules = (
            (self.iterations >= 1, "iterations must be >= 1", self.iterations),
            (math.isfinite(self.lr) and self.lr > 0, "lr must be > 0", self.lr),
            (
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                "betas must be two numbers in [0, 1)",
                self.betas,
            ),
            (self.prior_weight >= 0, "prior_weight must be >= 0", self.prior_weight),
            (
                self.weighting in WEIGHTINGS,
                f"weighting must be one of {', '.join(WEIGHTINGS)}",
                self.weighting,
            ),
            (
                self.window >= 1 and self.window % 2 == 1,
                "window must be an odd number >= 1",
                self.window,
            ),
            (self.distance_scale > 0, "distance_scale must be > 0", self.distance_scale),
            (self.tolerance >= 0, "tolerance must be >= 0", self.tolerance),
            (self.patience >= 1, "patience must be >= 1", self.patience),
            (self.warmup >= 0, "warmup must be >= 0", self.warmup),
        )
        for ok, rule, value in rules:
            if not ok:
                raise ValueError(f"{rule}, got {value!r}")


@dataclass
class SearchResult:
    """The outcome of a latent search, per image of the batch.

    Args:
        z: ``(B, latent_size)`` best latents.
        generated: ``(B, 1, S, S)`` ``G(z)`` of the best latents, in [-1, 1].
        context: ``(B,)`` context loss of the best latents.
        prior: ``(B,)`` prior loss of the best latents.
        initial_context: ``(B,)`` context loss of the initial latents.
        iterations: Steps run.
        seconds: Wall time of the search.
        trace: Per step, the mean total loss over the batch.
    """

    z: torch.Tensor
    generated: torch.Tensor
    context: torch.Tensor
    prior: torch.Tensor
    initial_context: torch.Tensor
    iterations: int
    seconds: float
    trace: list[float] = field(default_factory=list)


@contextlib.contextmanager
def frozen_eval(*networks: torch.nn.Module) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` on every parameter, restored afterwards.

    Gradients then flow through the networks to their inputs only, which saves the
    weight gradients' cost.
    """
    saved = [(n.training, [p.requires_grad for p in n.parameters()]) for n in networks]
    try:
        for n in networks:
            n.eval()
            for p in n.parameters():
                p.requires_grad_(False)
        yield
    finally:
        for n, (training, flags) in zip(networks, saved, strict=True):
            n.train(training)
            for p, flag in zip(n.parameters(), flags, strict=True):
                p.requires_grad_(flag)


def latent_search(
    generator: torch.nn.Module,
    discriminator: torch.nn.Module | None,
    images: torch.Tensor,
    known: torch.Tensor,
    z_init: torch.Tensor,
    settings: SearchSettings | None = None,
    *,
    extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> SearchResult:
    """Search latents whose generated images fit the known pixels (Yeh et al. 2017).

    Args:
        generator: ``z -> image`` in [-1, 1].
        discriminator: ``image -> logit`` for the prior loss; ``None`` (or
            ``prior_weight`` 0) drops the prior.
        images: ``(B, 1, S, S)`` corrupted images in [-1, 1] (hole values are ignored).
        known: ``(B, 1, S, S)``, 1 (or True) on known pixels.
        z_init: ``(B, latent_size)`` starting latents.
        settings: The search settings (defaults when ``None``).
        extra_loss: ``generated -> (B,)`` loss added per image.
        callback: Called after each step as ``callback(step, z, generated)`` with the
            step number (1-based) and the current (detached) latents and images.

    Returns:
        The best latents, their images and losses, the steps run and the wall time.

    Raises:
        ValueError: If shapes disagree.
    """
    settings = settings or SearchSettings()
    if images.shape != known.shape or images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(
            f"images and known must both be (B, 1, S, S), got {tuple(images.shape)} and "
            f"{tuple(known.shape)}"
        )
    if z_init.dim() != 2 or z_init.shape[0] != images.shape[0]:
        raise ValueError(
            f"z_init must be (B={images.shape[0]}, latent_size), got {tuple(z_init.shape)}"
        )
    device = next(generator.parameters()).device
    images, known = images.to(device).float(), known.to(device).float()
    weights = context_weights(
        known, settings.weighting, window=settings.window, distance_scale=settings.distance_scale
    )
    use_prior = discriminator is not None and settings.prior_weight > 0
    start = time.perf_counter()
    with frozen_eval(*(n for n in (generator, discriminator) if n is not None)):
        z = z_init.detach().to(device).float().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=settings.lr, betas=settings.betas)
        schedule = _warmup(optimizer, settings.warmup)
        best = _Best(z.shape[0], settings.patience)
        trace: list[float] = []
        initial_context = None
        step = 0
        for step in range(settings.iterations + 1):
            generated = generator(z)
            context = context_loss(generated, images, weights)
            prior = prior_loss(discriminator(generated)) if use_prior else torch.zeros_like(context)  # type: ignore[misc]
            total = context + settings.prior_weight * prior
            if extra_loss is not None:
                total = total + extra_loss(generated)
            if initial_context is None:
                initial_context = context.detach().clone()
            best.update(z, generated, context, prior, total)
            trace.append(float(total.detach().mean()))
            if step and callback is not None:
                callback(step, z.detach(), generated.detach())
            settled = step >= settings.warmup + settings.patience and best.stalled(
                settings.tolerance
            )
            if step == settings.iterations or settled:
                break
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
    return SearchResult(
        z=best.z,
        generated=best.generated,
        context=best.context,
        prior=best.prior,
        initial_context=initial_context,  # type: ignore[arg-type]
        iterations=step,
        seconds=time.perf_counter() - start,
        trace=trace,
    )


def _warmup(
    optimizer: torch.optim.Optimizer, steps: int
) -> torch.optim.lr_scheduler.LinearLR | None:
    """A linear learning-rate ramp over ``steps`` steps (``None`` when 0)."""
    if steps <= 0:
        return None
    return torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0 / steps, end_factor=1.0, total_iters=steps
    )


class _Best:
    """Each image's lowest total loss so far, its latent and image, and its history."""

    def __init__(self, batch: int, patience: int) -> None:
        self.patience = patience
        self.loss = torch.full((batch,), math.inf)
        self.history: list[torch.Tensor] = []
        self.z: torch.Tensor = torch.empty(0)
        self.generated: torch.Tensor = torch.empty(0)
        self.context: torch.Tensor = torch.empty(0)
        self.prior: torch.Tensor = torch.empty(0)

    def update(self, z, generated, context, prior, total) -> None:
        total = total.detach().cpu()
        better = total < self.loss
        if not self.history:
            self.z, self.generated = z.detach().clone(), generated.detach().clone()
            self.context, self.prior = context.detach().clone(), prior.detach().clone()
        elif better.any():
            index = better.nonzero().flatten().to(z.device)
            self.z[index] = z.detach()[index]
            self.generated[index] = generated.detach()[index]
            self.context[index] = context.detach()[index]
            self.prior[index] = prior.detach()[index]
        self.loss = torch.minimum(self.loss, total)
        self.history.append(self.loss.clone())
        if len(self.history) > self.patience + 1:
            self.history.pop(0)

    def stalled(self, tolerance: float) -> bool:
        """True when no image improved by more than ``tolerance`` over ``patience`` steps."""
        if tolerance <= 0 or len(self.history) <= self.patience:
            return False
        before, now = self.history[0], self.history[-1]
        gain = (before - now) / before.abs().clamp_min(1e-12)
        return bool((gain <= tolerance).all())
