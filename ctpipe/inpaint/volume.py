"""Inpaint a CT volume (or slice) in HU with a DCGAN: the entry point of ``ctpipe inpaint``.

:func:`inpaint_volume` takes an ``(i, j, k)`` float32 HU volume, a bool mask of the same
shape and a trained generator/discriminator pair (:func:`ctpipe.checkpoints.gan.
load_gan`), and:

1. plans one tile per part of the mask (:mod:`ctpipe.inpaint.tiles`);
2. for each tile, crops every slice where the part has hole pixels, maps HU to [-1, 1]
   with the model's window (:func:`ctpipe.transforms.hu_to_tanh`) and, for tiles larger
   than the generator, averages blocks down to its size;
3. searches latents (:mod:`ctpipe.inpaint.search`), started from the nearest pool sample
   (:mod:`ctpipe.inpaint.init`) or at random, either slice by slice (``independent``) or
   along the slices with latent reuse and group consistency (``sequence``,
   :mod:`ctpipe.inpaint.sequence`);
4. maps the generated patches back to HU, upsamples them, and blends them into the hole
   (:mod:`ctpipe.inpaint.blend`, plain or Poisson). Pixels a previous tile filled count
   as known for the next one.

Known pixels are returned bit for bit. The result records every setting, the model's
sha256 and window, per-slice statistics and the time taken.

Example:
    >>> from ctpipe.checkpoints.gan import load_gan  # doctest: +SKIP
    >>> gan = load_gan("ctpipe/weights/dcgan64_ct_cpu.pt")  # doctest: +SKIP
    >>> result = inpaint_volume(hu, mask, gan.generator, gan.discriminator,  # doctest: +SKIP
    ...                         window=gan.window)
    >>> result.hu.dtype, result.slices[0].iterations  # doctest: +SKIP
    (dtype('float32'), 41)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ctpipe.inpaint.search import SearchSettings

if TYPE_CHECKING:
    import torch

    from ctpipe.inpaint.init import LatentPool
    from ctpipe.inpaint.tiles import Tile

__all__ = ["InpaintResult", "InpaintSettings", "SliceStats", "inpaint_slice", "inpaint_volume"]


@dataclass(frozen=True)
class InpaintSettings:
    """How :func:`inpaint_volume` inpaints; valid once built.

    Args:
        search: The latent search (Yeh et al.).
        init: ``pool`` (nearest pool sample, Lahiri et al.) or ``random`` starting latents.
        pool_size: Samples in the pool.
        structure_weight: ``beta``, the structure (gradient) loss weight of pool matching.
        match_norm: ``l2`` (squared differences, by matrix products: fast) or ``l1``
            differences in pool matching.
        mode: ``sequence`` (latent reuse and group consistency along ``k``) or
            ``independent`` (every slice on its own).
        group_size: ``W``, slices optimised together in ``sequence`` mode.
        consistency_weight: ``gamma``, the group consistency weight in ``sequence`` mode.
        first_group: Slices of each run searched in full (``search``) from their pool
            matches in ``sequence`` mode: 1 is a single key slice.
        follow: The search of every later group in ``sequence`` mode, which starts from
            the previous group's latent: a few steps (see ``benchmarks/RESULTS.md`` for
            the speed and accuracy of 5, 10 and 20).
        blend: ``poisson`` or ``plain``.
        margin: Context pixels around each hole part (at full resolution).
        batch_size: Most slices searched together in ``independent`` mode.
        seed: Seed of the pool and of random starting latents.

    Example:
        >>> InpaintSettings(mode="sequence", group_size=0)
        Traceback (most recent call last):
        ...
        ValueError: group_size must be >= 1, got 0
    """

    search: SearchSettings = field(default_factory=SearchSettings)
    init: Literal["pool", "random"] = "pool"
    pool_size: int = 2048
    structure_weight: float = 1.0
    match_norm: Literal["l1", "l2"] = "l2"
    mode: Literal["sequence", "independent"] = "sequence"
    group_size: int = 4
    consistency_weight: float = 0.5
    first_group: int = 1
    follow: SearchSettings = field(
        default_factory=lambda: SearchSettings(iterations=20, tolerance=0.0, warmup=0)
    )
    blend: Literal["poisson", "plain"] = "poisson"
    margin: int = 8
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        rules = (
            (self.init in ("pool", "random"), "init must be 'pool' or 'random'", self.init),
            (self.pool_size >= 1, "pool_size must be >= 1", self.pool_size),
            (self.structure_weight >= 0, "structure_weight must be >= 0", self.structure_weight),
            (self.match_norm in ("l1", "l2"), "match_norm must be 'l1' or 'l2'", self.match_norm),
            (
                self.mode in ("sequence", "independent"),
                "mode must be 'sequence' or 'independent'",
                self.mode,
            ),
            (self.group_size >= 1, "group_size must be >= 1", self.group_size),
            (self.first_group >= 1, "first_group must be >= 1", self.first_group),
            (
                self.consistency_weight >= 0,
                "consistency_weight must be >= 0",
                self.consistency_weight,
            ),
            (self.blend in ("poisson", "plain"), "blend must be 'poisson' or 'plain'", self.blend),
            (self.margin >= 0, "margin must be >= 0", self.margin),
            (self.batch_size >= 1, "batch_size must be >= 1", self.batch_size),
        )
        for ok, rule, value in rules:
            if not ok:
                raise ValueError(f"{rule}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for run records."""
        data = asdict(self)
        data["search"]["betas"] = list(self.search.betas)
        data["follow"]["betas"] = list(self.follow.betas)
        return data


@dataclass(frozen=True)
class SliceStats:
    """What happened on one slice with hole pixels.

    Args:
        k: Slice index.
        hole_pixels: Pixels inpainted.
        tiles: Tiles that covered the slice.
        iterations: Search steps spent on the slice (summed over its tiles; in
            ``sequence`` mode a group's steps count for each of its slices).
        context_mae_hu: Mean absolute difference between ``G(z)`` and the known pixels of
            its tiles, in HU (clipped to the window): how well the fill fits its context.
        realism: Mean discriminator probability ``D(G(z))`` over the slice's tiles.
    """

    k: int
    hole_pixels: int
    tiles: int
    iterations: int
    context_mae_hu: float
    realism: float


@dataclass(frozen=True)
class InpaintResult:
    """An inpainted volume and the record of how it was made.

    Args:
        hu: ``(i, j, k)`` float32 HU, equal to the input outside the mask.
        mask: The bool mask that was inpainted.
        slices: Statistics of every slice with hole pixels, in ``k`` order.
        tiles: Position, size and scale of every tile.
        parameters: Settings, model window and sha256, pool size and seeds.
        seconds: Wall time.
    """

    hu: np.ndarray
    mask: np.ndarray
    slices: tuple[SliceStats, ...]
    tiles: tuple[dict[str, int], ...]
    parameters: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (no arrays), for JSON sidecars and run records."""
        return {
            "parameters": self.parameters,
            "seconds": round(self.seconds, 3),
            "hole_pixels": int(self.mask.sum()),
            "tiles": list(self.tiles),
            "slices": [asdict(s) for s in self.slices],
        }


def inpaint_volume(
    volume_hu: np.ndarray,
    mask: np.ndarray,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module | None,
    *,
    window: tuple[float, float] | None = None,
    settings: InpaintSettings | None = None,
    pool: LatentPool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> InpaintResult:
    """Inpaint the masked voxels of an HU volume with a DCGAN, slice by slice.

    Args:
        volume_hu: ``(i, j, k)`` HU (float32 or convertible).
        mask: Bool ``(i, j, k)``, True where to inpaint (:func:`ctpipe.inpaint.masks.
            check_mask` rules).
        generator: The DCGAN generator (eval mode is set during the search).
        discriminator: Its discriminator, for the prior loss (``None``: no prior).
        window: HU window of the model; by default the generator's
            ``checkpoint_record["window"]`` (set by :func:`~ctpipe.checkpoints.
            gan.load_gan`).
        settings: How to inpaint (defaults when ``None``).
        pool: A pool of samples to reuse (drawn from ``settings`` when ``None`` and
            ``settings.init`` is ``pool``).
        progress: Called as ``progress(done, total)`` after each tile.

    Returns:
        The inpainted volume and its record.

    Raises:
        ValueError: Bad shapes or mask, no window, or a hole too large for the slices.
    """
    import torch

    from ctpipe.checkpoints.file import state_sha256
    from ctpipe.inpaint.init import LatentPool
    from ctpipe.inpaint.masks import check_mask
    from ctpipe.inpaint.tiles import plan_tiles

    settings = settings or InpaintSettings()
    volume = np.asarray(volume_hu, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"volume_hu must be 3D (i, j, k), got shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError("volume_hu must be finite, got NaN or infinite values")
    mask = check_mask(mask, volume.shape)
    window = _window(generator, window)
    started = time.perf_counter()
    patch = int(generator.config["image_size"])  # type: ignore[index]
    tiles = plan_tiles(mask.any(axis=2), patch=patch, margin=settings.margin)
    if settings.init == "pool" and pool is None:
        pool = LatentPool.from_generator(generator, settings.pool_size, seed=settings.seed)
    random = torch.Generator().manual_seed(settings.seed)
    out = volume.copy()
    known = ~mask
    stats: dict[int, list[tuple[int, int, float, float]]] = {}
    from scipy.ndimage import label

    parts, _ = label(mask.any(axis=2), structure=np.ones((3, 3), bool))
    for done, tile in enumerate(tiles, start=1):
        own = (parts[tile.window] == tile.part)[:, :, None] & mask[
            tile.window[0], tile.window[1], :
        ]
        slices = np.flatnonzero(own.any(axis=(0, 1)))
        fills, fit, realism, steps = _inpaint_tile(
            out, known, tile, slices, generator, discriminator, window, settings, pool, random
        )
        for n, k in enumerate(slices):
            hole = own[:, :, k]
            region = out[tile.window[0], tile.window[1], k]
            current = known[tile.window[0], tile.window[1], k]
            filled = _blend(region, current, fills[n], hole, settings.blend)
            region[hole] = filled[hole]
            known[tile.window[0], tile.window[1], k] |= hole
            stats.setdefault(int(k), []).append((int(hole.sum()), steps[n], fit[n], realism[n]))
        if progress is not None:
            progress(done, len(tiles))
    return InpaintResult(
        hu=out,
        mask=mask,
        slices=tuple(_slice_stats(k, entries) for k, entries in sorted(stats.items())),
        tiles=tuple({"i0": t.i0, "j0": t.j0, "size": t.size, "scale": t.scale} for t in tiles),
        parameters={
            "method": "gan",
            "settings": settings.to_dict(),
            "window_hu": [float(w) for w in window],
            "generator": dict(generator.config),  # type: ignore[arg-type]
            "generator_sha256": state_sha256(generator.state_dict()),
            "discriminator_sha256": (
                state_sha256(discriminator.state_dict()) if discriminator is not None else None
            ),
            "pool_size": len(pool) if pool is not None else 0,
        },
        seconds=time.perf_counter() - started,
    )


def inpaint_slice(
    image_hu: np.ndarray,
    mask: np.ndarray,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module | None,
    **kwargs: Any,
) -> InpaintResult:
    """:func:`inpaint_volume` for one ``(i, j)`` slice; the result's ``hu`` is ``(i, j)``.

    Example:
        >>> inpaint_slice(np.zeros((4, 4, 1)), np.zeros((4, 4, 1), bool), None, None)
        Traceback (most recent call last):
        ...
        ValueError: image_hu must be 2D (i, j), got shape (4, 4, 1)
    """
    image = np.asarray(image_hu)
    if image.ndim != 2:
        raise ValueError(f"image_hu must be 2D (i, j), got shape {image.shape}")
    result = inpaint_volume(
        image[:, :, None], np.asarray(mask)[:, :, None], generator, discriminator, **kwargs
    )
    return InpaintResult(
        result.hu[:, :, 0],
        result.mask[:, :, 0],
        result.slices,
        result.tiles,
        result.parameters,
        result.seconds,
    )


# --- pieces ----------------------------------------------------------------------------------


def _window(generator: Any, window: tuple[float, float] | None) -> tuple[float, float]:
    if window is None:
        window = (getattr(generator, "checkpoint_record", None) or {}).get("window")
    if window is None or len(window) != 2 or not window[1] > window[0]:
        raise ValueError(
            f"window must be the model's HU (low, high) with high > low (load the model with "
            f"ctpipe.checkpoints.gan.load_gan, or pass window=), got {window!r}"
        )
    return float(window[0]), float(window[1])


def _inpaint_tile(
    volume: np.ndarray,
    known: np.ndarray,
    tile: Tile,
    slices: np.ndarray,
    generator: Any,
    discriminator: Any,
    window: tuple[float, float],
    settings: InpaintSettings,
    pool: LatentPool | None,
    random: torch.Generator,
) -> tuple[np.ndarray, list[float], list[float], list[int]]:
    """Generated HU patches (full resolution) for the tile's slices, with fit statistics."""
    import torch

    from ctpipe.inpaint.init import nearest_latents
    from ctpipe.inpaint.search import latent_search
    from ctpipe.inpaint.sequence import inpaint_sequence
    from ctpipe.inpaint.tiles import downsample, upsample
    from ctpipe.transforms import hu_to_tanh, tanh_to_hu

    crops = np.moveaxis(volume[tile.window[0], tile.window[1], :][:, :, slices], 2, 0)
    crop_known = np.moveaxis(known[tile.window[0], tile.window[1], :][:, :, slices], 2, 0)
    small, small_known = downsample(hu_to_tanh(crops, window), crop_known, tile.scale)
    images = torch.as_tensor(np.ascontiguousarray(small), dtype=torch.float32)[:, None]
    known_t = torch.as_tensor(np.ascontiguousarray(small_known))[:, None].float()

    def start(index: slice) -> torch.Tensor:
        if settings.init == "pool" and pool is not None:
            return nearest_latents(
                pool,
                images[index],
                known_t[index],
                structure_weight=settings.structure_weight,
                norm=settings.match_norm,
            ).z
        count = images[index].shape[0]
        return torch.randn(count, int(generator.config["latent_size"]), generator=random)

    generated_parts, steps = [], []
    if settings.mode == "sequence":
        for run in _runs(slices):
            first = slice(run.start, run.start + min(settings.first_group, len(run)))
            result = inpaint_sequence(
                generator,
                discriminator,
                images[run.start : run.stop],
                known_t[run.start : run.stop],
                start(first),
                settings.search,
                group_size=settings.group_size,
                consistency_weight=settings.consistency_weight,
                first_group=settings.first_group,
                follow=settings.follow,
            )
            generated_parts.append(result.generated)
            for _first, size, run_steps in result.groups:
                steps += [run_steps] * size
    else:
        for begin in range(0, len(slices), settings.batch_size):
            batch = slice(begin, begin + settings.batch_size)
            result = latent_search(
                generator,
                discriminator,
                images[batch],
                known_t[batch],
                start(batch),
                settings.search,
            )
            generated_parts.append(result.generated)
            steps += [result.iterations] * images[batch].shape[0]
    generated = torch.cat(generated_parts).cpu()
    with torch.no_grad():
        realism = (
            torch.sigmoid(discriminator(generated.to(next(discriminator.parameters()).device)))
            .cpu()
            .tolist()
            if discriminator is not None
            else [float("nan")] * len(slices)
        )
    generated_hu = tanh_to_hu(generated[:, 0].numpy().astype(np.float64), window)
    clipped = tanh_to_hu(small.astype(np.float64), window)
    fit = [
        float(np.abs(generated_hu[n] - clipped[n])[small_known[n]].mean())
        if small_known[n].any()
        else float("nan")
        for n in range(len(slices))
    ]
    return upsample(generated_hu, tile.scale), fit, realism, steps


def _runs(slices: np.ndarray) -> list[range]:
    """Positions (in ``slices``) of the runs of consecutive slice indices.

    Example:
        >>> _runs(np.array([2, 3, 4, 7, 8, 10]))
        [range(0, 3), range(3, 5), range(5, 6)]
    """
    breaks = np.flatnonzero(np.diff(slices) != 1) + 1
    edges = [0, *breaks.tolist(), len(slices)]
    return [range(a, b) for a, b in itertools.pairwise(edges)]


def _blend(
    region: np.ndarray, known: np.ndarray, generated: np.ndarray, hole: np.ndarray, method: str
) -> np.ndarray:
    """Blend one tile's fill: the boundary comes from known pixels, else from the fill."""
    from ctpipe.inpaint.blend import blend

    base = np.where(known, region, generated)
    return blend(base, generated, hole, method).astype(np.float32)


def _slice_stats(k: int, entries: list[tuple[int, int, float, float]]) -> SliceStats:
    return SliceStats(
        k=k,
        hole_pixels=sum(e[0] for e in entries),
        tiles=len(entries),
        iterations=sum(e[1] for e in entries),
        context_mae_hu=_mean([e[2] for e in entries], 3),
        realism=_mean([e[3] for e in entries], 4),
    )


def _mean(values: list[float], digits: int) -> float:
    """Mean of the finite values, rounded; NaN when there is none."""
    finite = [v for v in values if np.isfinite(v)]
    return round(float(np.mean(finite)), digits) if finite else float("nan")
