"""Per-slice statistics that tell how unlike the VAE's training data a CT slice is.

The out-of-distribution guard (:mod:`ctpipe.anomaly.guard`) does not trust one number: a
VAE's likelihood alone is known to rank simple, smooth images (phantoms, flat images) as
*more* likely than real anatomy (Nalisnick et al., ICLR 2019). Following "density of
states" estimation (Morningstar et al., AISTATS 2021), it describes each slice by several
summary statistics of the model and checks that they lie where held-back in-distribution
slices put them, in both directions:

VAE statistics, on the model's grid (HU window, 3 mm pixels), with the posterior mean
code ``z = mu`` (deterministic):

* ``log_rec_mse``: log of the mean squared reconstruction error, ``mean((x - x_hat)^2)``;
* ``log_rec_coarse``: log of the mean squared error after 8 x 8 average pooling (24 mm):
  whether the model could reproduce the slice's layout (a head, two legs, an MR image);
* ``log_rec_detail``: log of the error energy left after removing its 4 x 4 local mean:
  texture the model cannot reproduce (noise, streaks);
* ``log_kl``: log of the KL divergence of ``q(z|x)`` from the prior, nats;
* ``neg_elbo``: the negative ELBO (``-log p(x|z=mu)`` with the trained decoder's sigma,
  plus the KL), nats, the seed's score, kept for comparison and reports.

Input statistics, on the native HU (what the VAE's window and 3 mm grid cannot see):

* ``log_noise_hu``: log of 1 plus the noise standard deviation in soft tissue (HU) at a
  2 mm scale: the slice is averaged over blocks of about 2 mm (so scanners with other
  pixel sizes, or images interpolated to finer pixels, are compared alike), then
  Immerkaer's estimator (1996: the mean absolute response to a 3 x 3 mask that cancels
  planes, times ``sqrt(pi / 2) / 6``) is taken over pixels whose smoothed HU (Gaussian,
  2 pixels) lie in [-100, 200] (smoothed, so that heavy noise does not push the pixels it
  is measured on out of the range);
* ``log_metal_fraction``: log of ``1e-4`` plus the fraction of the body above 3000 HU
  (metal reaches the top of the usual 12-bit range, 3071 HU, or beyond; bone and contrast
  rarely do);
* ``log_air_fraction``: log of ``1e-3`` plus the fraction of the slice at or below
  -900 HU (air and the scanner's padding; an image with the wrong scale has none).

Body shape and intensity statistics (the guard's second version), on the native HU and the
body mask (:func:`ctpipe.body_mask.body_mask`), in millimetres so that field of view and
matrix do not matter:

* ``log_body_area``: log of the body's area in cm² (``1 +``): a head (150-250 cm²), a limb
  or a child is smaller than an adult trunk (400-1200 cm²);
* ``body_aspect``: log of the body's bounding-box width (first axis, mm) over its height
  (second axis): a trunk is wider than deep; a head, a slice turned by 90 degrees or a
  reformat is not;
* ``log_top_clip``: log of ``1e-4`` plus the fraction of body pixels at the slice's
  maximum value (within 0.5): an image clipped to a display window piles up there, real
  CT has a tail of a few pixels;
* ``log_bright_fraction``: log of ``1e-2`` plus the fraction of body pixels whose HU,
  smoothed over 2 mm, lie in [150, 700]: what the VAE's window (up to 240 HU) cannot
  see: organs flooded with contrast, vessels of an angiography phase, or the wrong scale;
* ``radial_drop_hu``: the median HU of tissue (smoothed HU in [-150, 250]) in the body's
  core (within half its equivalent radius of its centroid) minus that in its outer part
  (0.5 to 0.9 of the radius): cupping of a cone-beam CT darkens the core;
* ``rim_bone_fraction``: the fraction of the body's rim (2 to 15 mm inside its edge) above
  300 HU: a skull lies right under the scalp, while a trunk's rim is skin, fat and muscle
  crossed by a few ribs.

Statistics of the guard's third version, for what the second one missed (on a grid of
about 1 mm, :func:`v3_statistics`):

* ``log_flat_fraction``: log of ``1e-3`` plus the fraction of body pixels whose 3 x 3
  neighbourhood spans less than 0.5 HU: reconstructed CT has noise everywhere, so a
  constant patch inside the body is painted in (a burned-in mask, lost rows) or the values
  are not CT (quantised display values, activity maps);
* ``log_halo_fraction``: log of ``1e-2`` plus the fraction of a band 1-12 mm *outside* the
  body whose HU (smoothed over 1 mm) lie in [-800, -300]: around a real body there is air
  (and the couch, clothing); motion during the scan leaves a ghost of the skin there, half
  air and half fat;
* ``log_bright_blob_mm2``: log of 1 plus the area (mm²) of the largest connected region of
  body pixels whose HU (smoothed over 1 mm) lie in [350, 700], whose local standard
  deviation (over 1.5 mm) is below 60 HU and which lie more than 5 mm from any pixel above
  800 HU: a uniform, very bright lumen away from bone, as dense arterial contrast gives
  (portal-venous vessels stay below 350 HU; cancellous bone is uneven and beside cortex).

Statistics of the guard's fourth version, for what the third one missed
(:func:`v4_statistics`):

* ``log_dense_core_mm2``: log of 1 plus the area (mm²) of body pixels whose HU (smoothed
  over 1 mm) lie in [600, 3000] and that lie more than 2 mm inside such a region: a lumen
  of dense contrast (a filled tube or bowel, 700-3000 HU, several millimetres across) has a
  core, while the cortex of trunk bone is too thin to have one;
* ``fat_hu``: the median HU (smoothed over 2 mm) of the body's fat (-250 to -40 HU): fat
  lies at -80 to -120 HU on a 120 kVp CT; a low-energy (e.g. 40 keV) image darkens it, a
  mis-calibrated scanner shifts it (-250 when there is no fat);
* ``ring_ratio`` and ``streak_ratio``, on the *fine texture* (:func:`fine_texture`: the
  slice minus its 5 mm median, on a grid of about 2 mm, in soft tissue away from edges),
  where reconstructed CT holds noise that looks alike in every direction and about every
  point: ``ring_ratio`` is the log of the texture's power on rings about the image centre
  (the scanner's axis, where a detector fault draws its rings) over that about four points
  25 mm away; ``streak_ratio`` is the log of the power of line sums of the texture in its
  most streaked direction over the median direction (photon starvation and other streaks
  run straight across the body).

Statistics of the guard's fifth version, each in its own module (:func:`v5_statistics`):

* ``log_skin_layer_mm2`` (:mod:`ctpipe.anomaly.guard_skin_statistics`): the area of dense
  material (above 500 HU) outside the body, within 30 mm of it: a shield laid on the
  patient;
* ``log_block_ratio`` (:mod:`ctpipe.anomaly.guard_compression_statistics`): the steps of
  soft tissue across the edges of JPEG's 8 x 8 blocks over those across their middles, on
  the native pixel grid: lossy JPEG compression.

Statistics of the guard's sixth version, each in its own module (:func:`v6_statistics`):

* ``log_impulse_fraction`` (:mod:`ctpipe.anomaly.guard_impulse_statistics`): the share of
  body pixels more than 600 HU beyond all 8 neighbours: corrupted pixel data;
* ``log_quiet_tissue_ratio`` (:mod:`ctpipe.anomaly.guard_noise_map_statistics`): the
  quietest 5 % of soft-tissue blocks against the median block: a region without noise
  (filled in or edited).

Example:
    >>> import numpy as np
    >>> from ctpipe.nets.vae import VAE
    >>> from ctpipe.slice_grid import SliceGrid
    >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8)).eval()
    >>> hu = np.full((40, 40, 3), -1000.0, np.float32)
    >>> hu[8:32, 8:32] = 40.0
    >>> stats = slice_statistics(hu, (3.0, 3.0, 3.0), vae, SliceGrid((32, 32), pixel_mm=4.0),
    ...                          sigma=0.1)
    >>> stats.values.shape, stats.names[:2]
    ((3, 25), ('log_rec_mse', 'log_rec_coarse'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.anomaly.guard_grid import block_mean

if TYPE_CHECKING:
    from ctpipe.nets.vae import VAE
    from ctpipe.slice_grid import SliceGrid

__all__ = [
    "INPUT_STATISTICS",
    "SHAPE_STATISTICS",
    "STATISTICS",
    "V3_STATISTICS",
    "V4_STATISTICS",
    "V5_STATISTICS",
    "V6_STATISTICS",
    "VAE_STATISTICS",
    "SliceStatistics",
    "block_mean",
    "body_shape",
    "bright_blob_area",
    "choose_slices",
    "dense_core_area",
    "fat_hu",
    "fine_texture",
    "flat_fraction",
    "halo_fraction",
    "noise_std",
    "radial_drop",
    "rim_fraction",
    "ring_power",
    "ring_ratio",
    "slice_statistics",
    "streak_ratio",
    "top_clip_fraction",
    "v3_statistics",
    "v4_statistics",
    "v5_statistics",
    "v6_statistics",
]

#: Statistics of the VAE, in the order of :attr:`SliceStatistics.values`.
VAE_STATISTICS = ("log_rec_mse", "log_rec_coarse", "log_rec_detail", "log_kl", "neg_elbo")
#: Statistics of the input HU.
#: Statistics of the body's size, shape, clipping, bright tissue, cupping and rim of bone.
SHAPE_STATISTICS = (
    "log_body_area",
    "body_aspect",
    "log_top_clip",
    "log_bright_fraction",
    "radial_drop_hu",
    "rim_bone_fraction",
)
#: Statistics added by the guard's third version (flat patches, a ghost outside the body,
#: a bright uniform lumen).
V3_STATISTICS = ("log_flat_fraction", "log_halo_fraction", "log_bright_blob_mm2")
#: Statistics added by the guard's fourth version (thick dense tissue, the HU of fat, rings
#: about the scan's centre, streaks).
V4_STATISTICS = ("log_dense_core_mm2", "fat_hu", "ring_ratio", "streak_ratio")
#: Statistics added by the guard's fifth version (a dense layer outside the body, the JPEG
#: block grid).
V5_STATISTICS = ("log_skin_layer_mm2", "log_block_ratio")
#: Statistics added by the guard's sixth version (isolated extreme pixels, soft tissue
#: without noise).
V6_STATISTICS = ("log_impulse_fraction", "log_quiet_tissue_ratio")
INPUT_STATISTICS = (
    "log_noise_hu",
    "log_metal_fraction",
    "log_air_fraction",
    *SHAPE_STATISTICS,
    *V3_STATISTICS,
    *V4_STATISTICS,
    *V5_STATISTICS,
    *V6_STATISTICS,
)
#: Every statistic :func:`slice_statistics` computes.
STATISTICS = VAE_STATISTICS + INPUT_STATISTICS

#: HU above which a body pixel counts as metal.
METAL_HU = 3000.0
#: HU at or below which a pixel counts as air (or padding).
AIR_HU = -900.0
#: Scale (mm) at which noise is measured.
NOISE_SCALE_MM = 2.0
#: Soft-tissue HU range in which noise is measured.
SOFT_TISSUE_HU = (-100.0, 200.0)
#: HU range (smoothed over 2 mm) of ``log_bright_fraction``.
BRIGHT_HU = (150.0, 700.0)
#: HU range (smoothed over 2 mm) of the tissue whose radial profile ``radial_drop_hu`` takes.
TISSUE_HU = (-150.0, 250.0)
#: Depth (mm) of the body's rim that ``rim_bone_fraction`` looks at.
RIM_MM = (2.0, 15.0)
#: HU above which a rim pixel counts as bone.
BONE_HU = 300.0
#: A body pixel is flat when its 3 x 3 neighbourhood spans less than this (HU).
FLAT_RANGE_HU = 0.5
#: Band outside the body (mm) and HU range (smoothed over 1 mm) of ``log_halo_fraction``.
HALO_MM = (1.0, 12.0)
HALO_HU = (-800.0, -300.0)
#: HU range (smoothed over 1 mm), largest local SD (HU, over 1.5 mm) and least distance
#: (mm) from pixels above :data:`CORTEX_HU` of a bright lumen (``log_bright_blob_mm2``).
BLOB_HU = (350.0, 700.0)
BLOB_MAX_SD_HU = 60.0
BLOB_BONE_GAP_MM = 5.0
CORTEX_HU = 800.0
#: HU range (smoothed over 1 mm) of dense tissue, and the depth (mm) inside such a region
#: of its core (``log_dense_core_mm2``).
DENSE_HU = (600.0, 3000.0)
DENSE_CORE_MM = 2.0
#: Grid (mm) of the texture statistics, the median filter (mm) whose residual is the fine
#: texture, and the largest gradient (HU/mm, smoothed over 2 mm) of soft tissue that counts
#: as away from edges (``ring_ratio``, ``streak_ratio``).
TEXTURE_GRID_MM = 2.0
TEXTURE_MEDIAN_MM = 5.0
TEXTURE_EDGE_HU_MM = 15.0
#: Distance (mm) from the image centre of the four reference centres of ``ring_ratio``.
RING_OFFSET_MM = 25.0
#: HU range (smoothed over 2 mm) of fat, and the least share of the body it must fill
#: (``fat_hu``).
FAT_HU = (-250.0, -40.0)
FAT_MIN_FRACTION = 0.005


@dataclass(frozen=True)
class SliceStatistics:
    """The statistics of some slices of a volume.

    Attributes:
        slices: The slice indices ``k`` scored.
        names: The statistic names (:data:`STATISTICS`).
        values: float64 ``(len(slices), len(names))``.
    """

    slices: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """One statistic for every slice.

        Raises:
            KeyError: ``name`` is not one of :attr:`names`.
        """
        if name not in self.names:
            raise KeyError(f"no statistic {name!r}; known: {', '.join(self.names)}")
        return self.values[:, self.names.index(name)]

    def select(self, names: Sequence[str]) -> np.ndarray:
        """The columns ``names``, in that order, as ``(slices, len(names))``."""
        return np.stack([self.column(name) for name in names], axis=1)


def choose_slices(count: int, max_slices: int | None) -> np.ndarray:
    """At most ``max_slices`` slice indices spread evenly over ``count`` slices.

    Example:
        >>> choose_slices(10, 4).tolist()
        [0, 3, 6, 9]
        >>> choose_slices(3, None).tolist()
        [0, 1, 2]
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if max_slices is None or count <= max_slices:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, max_slices)).astype(int))


def slice_statistics(
    volume_hu: np.ndarray,
    spacing: Sequence[float],
    model: VAE,
    grid: SliceGrid,
    *,
    sigma: float,
    max_slices: int | None = None,
    batch_size: int = 16,
) -> SliceStatistics:
    """Every statistic of :data:`STATISTICS` for the slices of an HU volume ``(i, j, k)``.

    Args:
        volume_hu: float32 HU, ``(i, j, k)`` (one slice ``(i, j)`` is accepted).
        spacing: Voxel size in mm, ``(i, j[, k])``.
        model: The VAE (in eval mode).
        grid: Its slice grid.
        sigma: Its decoder's fixed standard deviation (``mse`` models), for ``neg_elbo``.
        max_slices: Score at most this many slices, spread evenly (``None``: all).
        batch_size: Slices per forward pass.

    Returns:
        The :class:`SliceStatistics`.

    Raises:
        ValueError: Not a finite non-empty volume, or a bad spacing or sigma.
    """
    from ctpipe.body_mask import body_bbox_centre, body_mask

    hu = np.asarray(volume_hu, dtype=np.float32)
    if hu.ndim == 2:
        hu = hu[:, :, None]
    if hu.ndim != 3 or hu.size == 0 or not np.isfinite(hu).all():
        raise ValueError(f"volume_hu must be a finite (i, j, k) array, got shape {hu.shape}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be > 0, got {sigma}")
    chosen = choose_slices(hu.shape[2], max_slices)
    hu = np.ascontiguousarray(hu[:, :, chosen])
    body = body_mask(hu)
    images, _ = grid.to_grid(hu, tuple(spacing)[:2], body_bbox_centre(body))
    model_values = _vae_statistics(images, model, sigma, batch_size)
    pixel_i, pixel_j = (float(v) for v in tuple(spacing)[:2])
    pixel = (pixel_i, pixel_j)
    input_values = np.stack(
        [_input_statistics(hu[:, :, k], body[:, :, k], pixel) for k in range(len(chosen))]
    )
    return SliceStatistics(chosen, STATISTICS, np.concatenate([model_values, input_values], axis=1))


def _vae_statistics(images: np.ndarray, model: VAE, sigma: float, batch_size: int) -> np.ndarray:
    import torch
    from torch.nn import functional as F

    from ctpipe.elbo import gaussian_kl, reconstruction_nll
    from ctpipe.inference import eval_mode

    x_all = torch.as_tensor(images)
    model.check_input(x_all)
    rows = []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, x_all.shape[0], batch_size):
            x = x_all[start : start + batch_size].to(model.device)
            mu, logvar = model.encode(x)
            x_mean, x_logvar = model.decode(mu)
            error = (x - x_mean).double()
            coarse = F.avg_pool2d(error, 8)
            local_mean = F.interpolate(F.avg_pool2d(error, 4), scale_factor=4, mode="nearest")
            kl = gaussian_kl(mu, logvar).double()
            if x_logvar is None:
                nll = reconstruction_nll(x, x_mean, sigma=sigma)
            else:
                nll = reconstruction_nll(x, x_mean, x_logvar=x_logvar, min_sigma=0.01)
            rows.append(
                torch.stack(
                    [
                        _log(error.square().flatten(1).mean(1)),
                        _log(coarse.square().flatten(1).mean(1)),
                        _log((error - local_mean).square().flatten(1).mean(1)),
                        _log(kl),
                        nll.double() + kl,
                    ],
                    dim=1,
                ).cpu()
            )
    return torch.cat(rows).numpy()


def _log(values: Any) -> Any:  # a torch tensor in and out
    return (values + 1e-12).log()


#: Immerkaer's mask: its response to a plane is 0, to white noise of std s has std 6 s.
_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_std(hu: np.ndarray, region: np.ndarray) -> float:
    """Immerkaer's noise standard deviation of a slice over ``region`` (0 when too small).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> image = rng.normal(40.0, 20.0, (128, 128))
        >>> round(noise_std(image, np.ones_like(image, bool)), 0)
        20.0
    """
    from scipy.ndimage import binary_erosion, convolve

    inner = binary_erosion(region, np.ones((3, 3), bool))
    if inner.sum() < 50:
        return 0.0
    response = convolve(hu.astype(np.float64), _IMMERKAER, mode="nearest")[inner]
    return float(np.sqrt(np.pi / 2) / 6 * np.abs(response).mean())


def body_shape(body: np.ndarray, pixel_mm: tuple[float, float]) -> tuple[float, float]:
    """Area (cm²) of a 2-D body mask and log of its bounding box's width over its height (mm).

    Example:
        >>> body = np.zeros((10, 10), bool)
        >>> body[2:8, 4:6] = True  # 6 x 2 pixels of 2 x 1 mm
        >>> area, aspect = body_shape(body, (2.0, 1.0))
        >>> round(area, 2), round(math.exp(aspect), 1)
        (0.24, 6.0)
    """
    if not body.any():
        return 0.0, 0.0
    area = float(body.sum()) * pixel_mm[0] * pixel_mm[1] / 100.0
    rows = np.flatnonzero(body.any(axis=1))
    columns = np.flatnonzero(body.any(axis=0))
    width = (rows[-1] - rows[0] + 1) * pixel_mm[0]
    height = (columns[-1] - columns[0] + 1) * pixel_mm[1]
    return area, math.log(width / height)


def top_clip_fraction(hu: np.ndarray, body: np.ndarray) -> float:
    """Fraction of body pixels within 0.5 of the body's maximum value.

    Example:
        >>> hu = np.array([[0.0, 150.0], [150.0, 40.0]])
        >>> top_clip_fraction(hu, np.ones((2, 2), bool))
        0.5
    """
    if not body.any():
        return 0.0
    values = hu[body]
    return float((values >= values.max() - 0.5).mean())


def radial_drop(smooth: np.ndarray, body: np.ndarray, low: float, high: float) -> float:
    """Median tissue HU in the body's core minus that in its outer part (0 if either is empty).

    The core is within half the body's equivalent radius ``sqrt(area / pi)`` of its
    centroid, the outer part between 0.5 and 0.9 of it (pixel units: the statistic is a
    ratio of distances, so a non-square pixel only tilts the rings slightly); tissue is
    ``low <= smooth <= high``.

    Example:
        >>> ii, jj = np.mgrid[:41, :41]
        >>> body = (ii - 20) ** 2 + (jj - 20) ** 2 <= 400
        >>> image = np.where((ii - 20) ** 2 + (jj - 20) ** 2 <= 64, -50.0, 40.0)
        >>> radial_drop(image, body, -150.0, 250.0)
        -90.0
    """
    if body.sum() < 20:
        return 0.0
    centre = np.argwhere(body).mean(axis=0)
    ii, jj = np.indices(body.shape)
    r = np.hypot(ii - centre[0], jj - centre[1]) / math.sqrt(body.sum() / math.pi)
    tissue = body & (smooth >= low) & (smooth <= high)
    core, outer = smooth[tissue & (r < 0.5)], smooth[tissue & (r >= 0.5) & (r < 0.9)]
    if core.size == 0 or outer.size == 0:
        return 0.0
    return float(np.median(core) - np.median(outer))


def rim_fraction(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float], depth_mm: tuple[float, float]
) -> float:
    """Fraction of the body's rim (``depth_mm`` inside its edge) above :data:`BONE_HU`.

    Example:
        >>> body = np.pad(np.ones((9, 9), bool), 1)  # its outer ring: 32 pixels at depth 1
        >>> hu = np.zeros((11, 11)); hu[1, 1:10] = 1000.0  # 9 of them bone
        >>> rim_fraction(hu, body, (1.0, 1.0), (0.5, 1.0))
        0.28125
    """
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(body, sampling=pixel_mm)
    rim = (depth > depth_mm[0]) & (depth <= depth_mm[1])
    if not rim.any():
        return 0.0
    return float((hu[rim] > BONE_HU).mean())


def flat_fraction(hu: np.ndarray, body: np.ndarray) -> float:
    """Fraction of body pixels whose 3 x 3 neighbourhood spans less than :data:`FLAT_RANGE_HU`.

    Example:
        >>> hu = np.tile([0.0, 10.0], (6, 3))  # stripes: every neighbourhood spans 10 HU
        >>> hu[:3, :3] = -1024.0  # a painted patch
        >>> flat_fraction(hu, np.ones((6, 6), bool))
        0.1111111111111111
    """
    from scipy.ndimage import maximum_filter, minimum_filter

    if not body.any():
        return 0.0
    values = hu.astype(np.float64)
    spread = maximum_filter(values, 3, mode="nearest") - minimum_filter(values, 3, mode="nearest")
    return float((spread[body] < FLAT_RANGE_HU).mean())


def halo_fraction(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Fraction of the band :data:`HALO_MM` outside the body at :data:`HALO_HU` (0 if none).

    HU are smoothed by a Gaussian of 1 mm first; the band's depth is the Euclidean distance
    (mm) to the body.

    Example:
        >>> body = np.zeros((40, 40), bool); body[10:30, 10:30] = True
        >>> hu = np.where(body, 40.0, -1000.0)
        >>> halo_fraction(hu, body, (1.0, 1.0))
        0.0
    """
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    if not body.any() or body.all():
        return 0.0
    outside = distance_transform_edt(~body, sampling=pixel_mm)
    band = (outside > HALO_MM[0]) & (outside <= HALO_MM[1])
    if not band.any():
        return 0.0
    smooth = gaussian_filter(hu.astype(np.float64), (1.0 / pixel_mm[0], 1.0 / pixel_mm[1]))
    values = smooth[band]
    return float(((values > HALO_HU[0]) & (values < HALO_HU[1])).mean())


def bright_blob_area(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Area (mm²) of the largest uniform bright lumen away from bone (see the module).

    Example:
        >>> body = np.ones((60, 60), bool)
        >>> hu = np.full((60, 60), 40.0); hu[20:30, 20:30] = 450.0  # 10 x 10 mm at 450 HU
        >>> round(bright_blob_area(hu, body, (1.0, 1.0)))  # its uniform core, edges uneven
        16
    """
    from scipy.ndimage import distance_transform_edt, gaussian_filter, label

    values = hu.astype(np.float64)
    sigma = np.array([1.0 / pixel_mm[0], 1.0 / pixel_mm[1]])
    smooth = gaussian_filter(values, sigma)
    mean, square = gaussian_filter(values, 1.5 * sigma), gaussian_filter(values**2, 1.5 * sigma)
    sd = np.sqrt(np.maximum(square - mean**2, 0.0))
    lumen = body & (smooth >= BLOB_HU[0]) & (smooth <= BLOB_HU[1]) & (sd < BLOB_MAX_SD_HU)
    cortex = values > CORTEX_HU
    if cortex.any():
        lumen &= distance_transform_edt(~cortex, sampling=pixel_mm) > BLOB_BONE_GAP_MM
    labels, count = label(lumen)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() * pixel_mm[0] * pixel_mm[1])


def dense_core_area(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Area (mm²) of thick, dense tissue: the core of regions of :data:`DENSE_HU` (see the module).

    HU are smoothed over 1 mm; a body pixel is dense when its smoothed HU lie in
    :data:`DENSE_HU`, and it is in the core when every pixel within :data:`DENSE_CORE_MM`
    of it is dense too (its Euclidean distance to the nearest pixel that is not, in mm,
    exceeds that depth).

    Example:
        >>> body = np.ones((60, 60), bool)
        >>> hu = np.full((60, 60), 40.0); hu[20:32, 20:32] = 1500.0  # 12 x 12 mm of contrast
        >>> hu[40:43, 5:55] = 1500.0  # a 3 mm cortex: too thin to have a core
        >>> round(dense_core_area(hu, body, (1.0, 1.0)))  # 8 x 8 pixels > 2 mm inside the square
        64
    """
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    if not body.any():
        return 0.0
    smooth = gaussian_filter(hu.astype(np.float64), (1.0 / pixel_mm[0], 1.0 / pixel_mm[1]))
    dense = body & (smooth >= DENSE_HU[0]) & (smooth < DENSE_HU[1])
    if not dense.any():
        return 0.0
    depth = distance_transform_edt(dense, sampling=pixel_mm)
    return float((depth > DENSE_CORE_MM).sum() * pixel_mm[0] * pixel_mm[1])


def fine_texture(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The slice's fine texture and where it is measured (see the module).

    The texture is the slice minus its median over :data:`TEXTURE_MEDIAN_MM` (edges and
    organs go, noise and thin lines stay); it is measured in soft tissue (HU smoothed over
    2 mm in :data:`SOFT_TISSUE_HU`) of the body, away from edges (the smoothed image's
    gradient below :data:`TEXTURE_EDGE_HU_MM` HU/mm).

    Example:
        >>> hu = np.full((20, 20), 40.0); hu[:, 10] = 140.0  # a thin bright line
        >>> texture, region = fine_texture(hu, np.ones((20, 20), bool), (1.0, 1.0))
        >>> float(texture[5, 10]), float(texture[5, 5]), bool(region[5, 2])
        (100.0, 0.0, True)
    """
    from scipy.ndimage import gaussian_filter, median_filter

    values = hu.astype(np.float64)
    size = max(3, 2 * round(TEXTURE_MEDIAN_MM / pixel_mm[0] / 2) + 1)
    texture = values - median_filter(values, size=size, mode="nearest")
    smooth = gaussian_filter(values, (2.0 / pixel_mm[0], 2.0 / pixel_mm[1]))
    s_i, s_j = np.gradient(smooth, *pixel_mm)
    region = (
        body
        & (smooth >= SOFT_TISSUE_HU[0])
        & (smooth <= SOFT_TISSUE_HU[1])
        & (np.hypot(s_i, s_j) < TEXTURE_EDGE_HU_MM)
    )
    return texture, region


def ring_power(
    texture: np.ndarray,
    region: np.ndarray,
    centre: tuple[float, float],
    pixel_mm: tuple[float, float],
) -> float:
    """Mean of ``n * m²`` over 1 mm rings about ``centre`` (``m``: the ring's mean texture).

    Only rings with at least 10 pixels of ``region`` count; ``n`` is their pixel count.
    Independent noise of variance ``v`` gives ``v`` on average; a ring artifact about
    ``centre`` adds its mean squared, times ``n``. 0 when no ring counts.

    Example:
        >>> ii, jj = np.mgrid[:41, :41]
        >>> r = np.hypot(ii - 20, jj - 20).astype(int)
        >>> texture = np.where(r == 10, 5.0, 0.0)  # a ring of +5 at 10 mm
        >>> n = int((r == 10).sum())
        >>> rings = np.bincount(r.ravel())
        >>> total = rings[rings >= 10].sum()
        >>> power = ring_power(texture, np.ones((41, 41), bool), (20.0, 20.0), (1.0, 1.0))
        >>> bool(np.isclose(power, n * 25 / total))
        True
    """
    ii, jj = np.nonzero(region)
    radius = np.hypot((ii - centre[0]) * pixel_mm[0], (jj - centre[1]) * pixel_mm[1]).astype(int)
    counts = np.bincount(radius)
    sums = np.bincount(radius, texture[ii, jj])
    keep = counts >= 10
    if not keep.any():
        return 0.0
    return float((sums[keep] ** 2 / counts[keep]).sum() / counts[keep].sum())


def ring_ratio(texture: np.ndarray, region: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Log of the ring power about the image centre over its mean about four points off it.

    Rings of a detector fault are centred on the scanner's axis of rotation, the centre of
    the reconstructed image; about points :data:`RING_OFFSET_MM` away they blur out, while
    noise and anatomy score alike about either (0 when a power is 0).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.normal(0.0, 10.0, (101, 101))
        >>> ii, jj = np.mgrid[:101, :101]
        >>> ring = 30.0 * (np.abs(np.hypot(ii - 50, jj - 50) - 30) < 1)
        >>> region = np.ones((101, 101), bool)
        >>> round(ring_ratio(noise, region, (1.0, 1.0)), 1), ring_ratio(
        ...     noise + ring, region, (1.0, 1.0)) > 2
        (0.0, True)
    """
    centre = (np.asarray(texture.shape, np.float64) - 1) / 2
    at = ring_power(texture, region, (centre[0], centre[1]), pixel_mm)
    offsets = [
        (RING_OFFSET_MM, 0.0),
        (-RING_OFFSET_MM, 0.0),
        (0.0, RING_OFFSET_MM),
        (0.0, -RING_OFFSET_MM),
    ]
    off = np.mean(
        [
            ring_power(
                texture,
                region,
                (centre[0] + d_i / pixel_mm[0], centre[1] + d_j / pixel_mm[1]),
                pixel_mm,
            )
            for d_i, d_j in offsets
        ]
    )
    return math.log(at / off) if at > 0 and off > 0 else 0.0


def streak_ratio(texture: np.ndarray, region: np.ndarray, step_deg: float = 6.0) -> float:
    """Log of the line power of the texture in its most streaked direction over the median one.

    The texture (0 outside ``region``) is projected along lines every ``step_deg`` degrees
    (:func:`skimage.transform.radon`); each line's sum ``p`` over its ``n`` pixels of
    ``region`` gives ``p² / (n v)`` (``v``: the texture's variance in ``region``), which
    isotropic noise holds at about the same level in every direction, and a streak raises
    along its own. Averaged over the lines of a direction (those with more than 10 pixels),
    the largest over the median (0 when there is nothing to measure).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.normal(0.0, 10.0, (64, 64))
        >>> streaks = noise.copy(); streaks[:, ::9] += 40.0  # lines along the first axis
        >>> region = np.ones((64, 64), bool)
        >>> round(streak_ratio(noise, region), 1), streak_ratio(streaks, region) > 2
        (0.7, True)
    """
    from skimage.transform import radon

    if region.sum() < 100:
        return 0.0
    variance = float(texture[region].var())
    if variance <= 0:
        return 0.0
    theta = np.arange(0.0, 180.0, step_deg)
    sums = radon(np.where(region, texture, 0.0), theta, circle=False)
    counts = radon(region.astype(np.float64), theta, circle=False)
    keep = counts > 10
    z2 = np.where(keep, sums**2 / np.maximum(counts, 1.0) / variance, 0.0)
    power = z2.sum(axis=0) / np.maximum(keep.sum(axis=0), 1)
    median = float(np.median(power))
    return math.log(power.max() / median) if median > 0 and power.max() > 0 else 0.0


def fat_hu(hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]) -> float:
    """Median HU of the body's fat: body pixels whose HU smoothed over 2 mm lie in :data:`FAT_HU`.

    Returns the range's lower end when fewer than :data:`FAT_MIN_FRACTION` of the body's
    pixels are fat (no fat found: not CT numbers, or not a body).

    Example:
        >>> body = np.ones((40, 40), bool)
        >>> hu = np.full((40, 40), 40.0); hu[:, :10] = -105.0  # a quarter of fat
        >>> round(fat_hu(hu, body, (1.0, 1.0)))  # the fat's edge is smoothed a little
        -104
    """
    from scipy.ndimage import gaussian_filter

    if not body.any():
        return FAT_HU[0]
    smooth = gaussian_filter(hu.astype(np.float64), (2.0 / pixel_mm[0], 2.0 / pixel_mm[1]))
    values = smooth[body]
    fat = values[(values >= FAT_HU[0]) & (values <= FAT_HU[1])]
    if fat.size < FAT_MIN_FRACTION * values.size:
        return FAT_HU[0]
    return float(np.median(fat))


def _input_statistics(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> list[float]:
    from scipy.ndimage import gaussian_filter

    low, high = SOFT_TISSUE_HU
    coarse = block_mean(hu.astype(np.float64), max(1, round(NOISE_SCALE_MM / pixel_mm[0])))
    smooth = gaussian_filter(coarse, 2.0)
    noise = noise_std(coarse, (smooth >= low) & (smooth <= high))
    metal = float((hu[body] > METAL_HU).mean()) if body.any() else 0.0
    air = float((hu <= AIR_HU).mean())
    area, aspect = body_shape(body, pixel_mm)
    smooth_2mm = gaussian_filter(hu.astype(np.float64), (2.0 / pixel_mm[0], 2.0 / pixel_mm[1]))
    bright = (smooth_2mm[body] >= BRIGHT_HU[0]) & (smooth_2mm[body] <= BRIGHT_HU[1])
    return [
        math.log(noise + 1.0),
        math.log(metal + 1e-4),
        math.log(air + 1e-3),
        math.log(area + 1.0),
        aspect,
        math.log(top_clip_fraction(hu, body) + 1e-4),
        math.log((float(bright.mean()) if body.any() else 0.0) + 1e-2),
        radial_drop(smooth_2mm, body, *TISSUE_HU),
        rim_fraction(hu, body, pixel_mm, RIM_MM),
        *v3_statistics(hu, body, pixel_mm),
        *v4_statistics(hu, body, pixel_mm),
        *v5_statistics(hu, body, pixel_mm),
        *v6_statistics(hu, body, pixel_mm),
    ]


def v3_statistics(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> tuple[float, float, float]:
    """The statistics of :data:`V3_STATISTICS` for one slice, on a grid of about 1 mm.

    The slice and its body mask are averaged over blocks of ``round(1 / pixel)`` pixels
    (a block of a constant patch stays constant; noise stays), which makes them 2-4 times
    cheaper on 512 x 512 images of 0.6-0.8 mm pixels.

    Example:
        >>> hu = np.random.default_rng(0).normal(40.0, 10.0, (64, 64))
        >>> body = np.zeros((64, 64), bool); body[8:56, 8:56] = True
        >>> [round(v, 2) for v in v3_statistics(hu, body, (0.5, 0.5))]
        [-6.91, -4.61, 0.0]
    """
    factor = max(1, round(1.0 / pixel_mm[0]))
    coarse = block_mean(hu.astype(np.float64), factor)
    coarse_body = block_mean(body.astype(np.float64), factor) >= 0.5
    pixel = (pixel_mm[0] * factor, pixel_mm[1] * factor)
    return (
        math.log(flat_fraction(coarse, coarse_body) + 1e-3),
        math.log(halo_fraction(coarse, coarse_body, pixel) + 1e-2),
        math.log(bright_blob_area(coarse, coarse_body, pixel) + 1.0),
    )


def v4_statistics(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The statistics of :data:`V4_STATISTICS` for one slice.

    ``log_dense_core_mm2`` and ``fat_hu`` are taken on the grid of about 1 mm of
    :func:`v3_statistics`, ``ring_ratio`` and ``streak_ratio`` on one of about
    :data:`TEXTURE_GRID_MM` (blocks of ``round(2 / pixel)`` pixels): streaks and rings of
    1-2 mm survive it, and the median filter and projections cost a quarter as much.

    Example:
        >>> hu = np.random.default_rng(0).normal(40.0, 10.0, (64, 64))
        >>> hu[8:56, 8:40] = hu[8:56, 8:40] - 140.0  # a band of fat at -100 HU
        >>> body = np.zeros((64, 64), bool); body[8:56, 8:56] = True
        >>> dense, fat, ring, streak = v4_statistics(hu, body, (1.0, 1.0))
        >>> dense, round(fat), abs(ring) < 0.5, abs(streak) < 1.5  # fat: its edge smoothed
        (0.0, -98, True, True)
    """
    values = hu.astype(np.float64)
    fine = max(1, round(1.0 / pixel_mm[0]))
    coarse = block_mean(values, fine)
    coarse_body = block_mean(body.astype(np.float64), fine) >= 0.5
    pixel = (pixel_mm[0] * fine, pixel_mm[1] * fine)
    factor = max(1, round(TEXTURE_GRID_MM / pixel_mm[0]))
    grid = (pixel_mm[0] * factor, pixel_mm[1] * factor)
    texture, region = fine_texture(
        block_mean(values, factor), block_mean(body.astype(np.float64), factor) >= 0.5, grid
    )
    return (
        math.log(dense_core_area(coarse, coarse_body, pixel) + 1.0),
        fat_hu(coarse, coarse_body, pixel),
        ring_ratio(texture, region, grid),
        streak_ratio(texture, region),
    )


def v5_statistics(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> tuple[float, float]:
    """The statistics of :data:`V5_STATISTICS` for one slice (see their modules).

    Example:
        >>> hu = np.random.default_rng(0).normal(40.0, 10.0, (64, 64))
        >>> body = np.zeros((64, 64), bool); body[8:56, 8:56] = True
        >>> layer, block = v5_statistics(hu, body, (1.0, 1.0))
        >>> layer, abs(block) < 0.1
        (0.0, True)
    """
    from ctpipe.anomaly.guard_compression_statistics import block_ratio
    from ctpipe.anomaly.guard_skin_statistics import skin_layer_statistic

    return skin_layer_statistic(hu, body, pixel_mm), block_ratio(hu, body, pixel_mm)


def v6_statistics(
    hu: np.ndarray, body: np.ndarray, pixel_mm: tuple[float, float]
) -> tuple[float, float]:
    """The statistics of :data:`V6_STATISTICS` for one slice (see their modules).

    Example:
        >>> hu = np.random.default_rng(0).normal(40.0, 10.0, (128, 128))
        >>> body = np.zeros((128, 128), bool); body[8:120, 8:120] = True
        >>> impulses, quiet = v6_statistics(hu, body, (1.0, 1.0))
        >>> round(impulses, 2), quiet > -0.3
        (-11.51, True)
    """
    from ctpipe.anomaly.guard_impulse_statistics import impulse_statistic
    from ctpipe.anomaly.guard_noise_map_statistics import quiet_tissue_ratio

    return impulse_statistic(hu, body), quiet_tissue_ratio(hu, body, pixel_mm)
