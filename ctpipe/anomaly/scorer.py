"""VAE anomaly scoring of CT volumes: a per-voxel map and a per-slice score.

A VAE trained on normal anatomy reconstructs normal tissue well and an anomaly poorly, and
gives slices holding one a lower ELBO. :class:`VAEAnomalyScorer` puts each axial slice on the
model's grid (:class:`ctpipe.slice_grid.SliceGrid`, centred on the body), encodes it, draws
``samples`` codes from the posterior ``q(z|x)`` (seeded) and decodes each. Then:

* the **anomaly map** is the reconstruction error averaged over the draws, ``|x - x_hat|``
  (``error="abs"``) or ``x - x_hat`` (``"signed"``: positive where the slice is denser than
  its reconstruction), converted to HU (grid units times the window width, so errors are
  those of window-clipped HU), optionally smoothed (``smooth_mm``, Gaussian sigma), brought
  back to the input grid (:meth:`SliceGrid.from_grid`, bilinear) and set to 0 outside the
  body (``mask_body``) and outside the model's field of view;
* the **slice score** is the negative ELBO in nats, ``-log p(x|z)`` averaged over the draws
  plus the closed-form KL (:mod:`ctpipe.elbo`): higher is more anomalous.

:func:`anomaly_volume` is the one-call API used by the ``anomaly`` workflow step and
``ctpipe anomaly``.

Example:
    >>> import numpy as np
    >>> from ctpipe.nets.vae import VAE
    >>> from ctpipe.slice_grid import SliceGrid
    >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    >>> hu = np.full((40, 40, 3), -1000.0, np.float32)
    >>> hu[8:32, 8:32] = 40.0
    >>> result = anomaly_volume(hu, vae, spacing=(1.0, 1.0, 3.0),
    ...                         grid=SliceGrid((32, 32), pixel_mm=1.5), sigma=0.1)
    >>> result.map_hu.shape, result.map_hu.dtype, result.neg_elbo.shape
    ((40, 40, 3), dtype('float32'), (3,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ctpipe.nets.vae import VAE
    from ctpipe.slice_grid import SliceGrid

__all__ = ["ERRORS", "AnomalyResult", "VAEAnomalyScorer", "anomaly_volume"]

#: Kinds of per-pixel reconstruction error.
ERRORS = ("abs", "signed")


@dataclass(frozen=True)
class AnomalyResult:
    """The anomaly map and slice scores of one volume.

    Attributes:
        map_hu: float32 ``(i, j, k)``: mean reconstruction error in HU (see the module).
        neg_elbo: float64 ``(k,)``: negative ELBO of each slice, nats (higher: more
            anomalous).
        kl: float64 ``(k,)``: its KL term.
        reconstruction_nll: float64 ``(k,)``: its ``-log p(x|z)`` term (mean over draws).
        body: bool ``(i, j, k)``: the body mask (:func:`ctpipe.body_mask.body_mask`).
        fov: bool ``(i, j)``: pixels inside the model's field of view.
        settings: How the result was made (model, grid, draws, seed, ...), JSON-ready.
    """

    map_hu: np.ndarray
    neg_elbo: np.ndarray
    kl: np.ndarray
    reconstruction_nll: np.ndarray
    body: np.ndarray = field(repr=False)
    fov: np.ndarray = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def slice_table(self) -> list[dict[str, float]]:
        """One row per slice with its scores.

        Returns:
            Dicts of ``slice``, ``neg_elbo``, ``kl``, ``reconstruction_nll`` and
            ``map_p99_hu`` (99th percentile of the map in the body, 0 for an empty body).
        """
        rows = []
        for k in range(self.neg_elbo.size):
            inside = self.map_hu[:, :, k][self.body[:, :, k] & self.fov]
            rows.append(
                {
                    "slice": k,
                    "neg_elbo": float(self.neg_elbo[k]),
                    "kl": float(self.kl[k]),
                    "reconstruction_nll": float(self.reconstruction_nll[k]),
                    "map_p99_hu": float(np.percentile(inside, 99)) if inside.size else 0.0,
                }
            )
        return rows

    def write_nifti(self, path: str | PathLike[str], affine_ras: np.ndarray) -> Path:
        """Write the map as float32 NIfTI with the volume's RAS affine (atomically)."""
        from ctpipe.io.nifti import write_nifti

        return write_nifti(
            self.map_hu.astype(np.float32),
            affine_ras,
            path,
            description=f"ctpipe VAE anomaly map ({self.settings.get('error', 'abs')} error, HU)",
        )


class VAEAnomalyScorer:
    """Score slices with a VAE: reconstruction-error maps and negative ELBO.

    Args:
        model: The VAE (:func:`ctpipe.checkpoints.vae.load_vae`).
        grid: Its slice grid; ``None``: the grid stored in its checkpoint record.
        sigma: The decoder's fixed standard deviation (``mse`` models); ``None``: the
            training configuration's ``loss.sigma`` in its checkpoint record.
        min_sigma: Floor of predicted standard deviations (``gaussian_nll`` models); ``None``:
            from the record, else 0.01.
        samples: Posterior draws per slice (>= 1); the map and the likelihood term are
            averaged over them.
        seed: Seed of the draws (the same seed gives the same result).
        error: ``"abs"`` or ``"signed"`` reconstruction error.
        smooth_mm: Gaussian smoothing of the map on the grid (sigma in mm; 0: none).
        mask_body: Set the map to 0 outside the body.
        batch_size: Slices per forward pass.

    Raises:
        ValueError: A setting outside its rule, or no grid or sigma known.
    """

    def __init__(
        self,
        model: VAE,
        *,
        grid: SliceGrid | None = None,
        sigma: float | None = None,
        min_sigma: float | None = None,
        samples: int = 4,
        seed: int = 0,
        error: str = "abs",
        smooth_mm: float = 0.0,
        mask_body: bool = True,
        batch_size: int = 16,
    ) -> None:
        from ctpipe.vae_generate import model_grid

        record = getattr(model, "checkpoint_record", None) or {}
        loss_config = record.get("config", {}).get("loss", {}) if isinstance(record, dict) else {}
        self.model = model
        self.grid = grid if grid is not None else model_grid(model)
        self.sigma = float(sigma if sigma is not None else loss_config.get("sigma", math.nan))
        self.min_sigma = float(min_sigma or loss_config.get("min_sigma", 0.01))
        if model.reconstruction == "mse" and not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(
                f"sigma must be a number > 0 for an 'mse' VAE (its record gives none), "
                f"got {sigma!r}"
            )
        for name, value in (("samples", samples), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if error not in ERRORS:
            raise ValueError(f"error must be one of {', '.join(ERRORS)}, got {error!r}")
        if not (math.isfinite(smooth_mm) and smooth_mm >= 0):
            raise ValueError(f"smooth_mm must be a number >= 0, got {smooth_mm!r}")
        self.samples, self.seed, self.error = samples, int(seed), error
        self.smooth_mm, self.mask_body, self.batch_size = (
            float(smooth_mm),
            bool(mask_body),
            batch_size,
        )

    def settings(self) -> dict[str, Any]:
        """The scoring settings and the model's identity, JSON-ready."""
        record = getattr(self.model, "checkpoint_record", None) or {}
        return {
            "method": "VAE reconstruction error (map) and negative ELBO (slice score)",
            "model": {"name": "vae", "kwargs": dict(self.model.config)},
            "model_sha256": record.get("network_sha256") if isinstance(record, dict) else None,
            "model_note": record.get("note") if isinstance(record, dict) else None,
            "grid": self.grid.to_dict(),
            "reconstruction": self.model.reconstruction,
            "sigma": self.sigma if self.model.reconstruction == "mse" else None,
            "samples": self.samples,
            "seed": self.seed,
            "error": self.error,
            "smooth_mm": self.smooth_mm,
            "mask_body": self.mask_body,
            "map_units": "HU (window-clipped)",
            "score_units": "nats per slice",
        }

    def score_grid(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Score grid images ``(n, 1, rows, columns)`` in [0, 1].

        Returns:
            ``"map"`` float32 ``(n, rows, columns)`` in grid units (not yet HU or
            smoothed), and float64 ``(n,)`` arrays ``"neg_elbo"``, ``"kl"`` and
            ``"reconstruction_nll"``.
        """
        import torch

        from ctpipe.elbo import gaussian_kl, reconstruction_nll
        from ctpipe.inference import eval_mode

        x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
        self.model.check_input(x_all)
        generator = torch.Generator().manual_seed(self.seed)
        out: dict[str, list[np.ndarray]] = {"map": [], "kl": [], "reconstruction_nll": []}
        with eval_mode(self.model), torch.inference_mode():
            for start in range(0, x_all.shape[0], self.batch_size):
                x = x_all[start : start + self.batch_size].to(self.model.device)
                mu, logvar = self.model.encode(x)
                error = torch.zeros_like(x)
                nll = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
                for _ in range(self.samples):
                    eps = torch.randn(mu.shape, generator=generator).to(mu.device, mu.dtype)
                    x_mean, x_logvar = self.model.decode(mu + torch.exp(0.5 * logvar) * eps)
                    diff = x - x_mean
                    error += diff.abs() if self.error == "abs" else diff
                    nll += self._nll(x, x_mean, x_logvar, reconstruction_nll).double()
                out["map"].append((error / self.samples)[:, 0].float().cpu().numpy())
                out["reconstruction_nll"].append((nll / self.samples).cpu().numpy())
                out["kl"].append(gaussian_kl(mu, logvar).double().cpu().numpy())
        result = {key: np.concatenate(values) for key, values in out.items()}
        result["neg_elbo"] = result["reconstruction_nll"] + result["kl"]
        return result

    def _nll(self, x: Any, x_mean: Any, x_logvar: Any, nll_fn: Any) -> Any:
        if x_logvar is None:
            return nll_fn(x, x_mean, sigma=self.sigma)
        return nll_fn(x, x_mean, x_logvar=x_logvar, min_sigma=self.min_sigma)

    def score(self, volume_hu: np.ndarray, spacing: Sequence[float]) -> AnomalyResult:
        """Score every axial slice of an HU volume ``(i, j, k)``.

        Args:
            volume_hu: HU indexed ``(i, j, k)`` (one slice ``(i, j)`` is accepted too).
            spacing: Voxel size in mm, ``(i, j)`` or ``(i, j, k)``.

        Returns:
            The map on the input grid and the per-slice scores.

        Raises:
            ValueError: Not a finite 2-D or 3-D array, or a bad spacing.
        """
        from ctpipe.body_mask import body_bbox_centre, body_mask

        hu = _check_volume(volume_hu)
        spacing = _check_spacing(spacing)
        body = body_mask(hu)
        centre = body_bbox_centre(body)
        images, placement = self.grid.to_grid(hu, spacing[:2], centre)
        scores = self.score_grid(images)
        grid_map = scores["map"] * self.grid.window_width
        if self.smooth_mm > 0:
            from scipy.ndimage import gaussian_filter

            sigma_px = self.smooth_mm / self.grid.pixel_mm
            grid_map = gaussian_filter(grid_map, sigma=(0, sigma_px, sigma_px))
        map_hu = self.grid.from_grid(grid_map, placement, fill=0.0)
        fov = placement.fov(self.grid.size)
        map_hu[~fov] = 0.0
        if self.mask_body:
            map_hu[~body] = 0.0
        settings = self.settings()
        settings["placement"] = {
            "centre_ij": None if centre is None else [float(c) for c in centre],
            "pixel_mm": [float(p) for p in placement.pixel_mm],
            "resized_hw": list(placement.resized_hw),
            "offset_hw": list(placement.offset_hw),
            "input_spacing_mm": [float(s) for s in spacing],
        }
        return AnomalyResult(
            map_hu=map_hu.astype(np.float32),
            neg_elbo=scores["neg_elbo"],
            kl=scores["kl"],
            reconstruction_nll=scores["reconstruction_nll"],
            body=body,
            fov=fov,
            settings=settings,
        )


def anomaly_volume(
    volume_hu: np.ndarray,
    model: VAE,
    *,
    spacing: Sequence[float],
    **kwargs: Any,
) -> AnomalyResult:
    """Anomaly map and slice scores of an HU volume ``(i, j, k)`` with a VAE.

    Args:
        volume_hu: float32 HU indexed ``(i, j, k)``.
        model: A VAE, e.g. :func:`ctpipe.weights.load_default_vae`.
        spacing: Voxel size in mm along ``(i, j[, k])``.
        **kwargs: Settings of :class:`VAEAnomalyScorer` (``samples``, ``seed``, ``error``,
            ``smooth_mm``, ``mask_body``, ``batch_size``, ``grid``, ``sigma``).

    Returns:
        :class:`AnomalyResult`: ``map_hu`` shaped like the volume, ``neg_elbo`` per slice.

    Example:
        >>> from ctpipe.weights import load_default_vae  # doctest: +SKIP
        >>> result = anomaly_volume(ct.hu, load_default_vae(), spacing=ct.spacing)  # doctest: +SKIP
        >>> result.write_nifti("anomaly.nii.gz", ct.affine_ras)  # doctest: +SKIP
    """
    return VAEAnomalyScorer(model, **kwargs).score(volume_hu, spacing)


def _check_volume(volume_hu: np.ndarray) -> np.ndarray:
    hu = np.asarray(volume_hu)
    if hu.ndim == 2:
        hu = hu[:, :, None]
    if hu.ndim != 3 or hu.size == 0:
        raise ValueError(f"volume_hu must be a non-empty (i, j, k) array, got shape {hu.shape}")
    if not np.issubdtype(hu.dtype, np.number):
        raise ValueError(f"volume_hu must be numeric HU, got dtype {hu.dtype}")
    hu = hu.astype(np.float32, copy=False)
    if not np.isfinite(hu).all():
        raise ValueError("volume_hu holds NaN or infinite values")
    return hu


def _check_spacing(spacing: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(s) for s in spacing)
    if len(values) not in (2, 3) or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be 2 or 3 positive sizes in mm, got {tuple(spacing)}")
    return values
