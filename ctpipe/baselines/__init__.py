"""Classical (non-learned) denoising baselines that the networks are compared against.

Each baseline maps one 2D HU slice to its denoised HU slice, like every denoiser that
:mod:`ctpipe.evaluate` scores. Optional packages load only when a baseline runs; install
them with ``pip install ctpipe[baselines]``.

Example:
    >>> from ctpipe.baselines import BM3DDenoiser
    >>> BM3DDenoiser(sigma=0.01).sigma_hu
    40.96
"""

from __future__ import annotations

from ctpipe.baselines.bm3d import (
    DEFAULT_SIGMA_GRID,
    BM3DDenoiser,
    bm3d_denoise_slice,
    choose_bm3d_sigma,
)

__all__ = ["DEFAULT_SIGMA_GRID", "BM3DDenoiser", "bm3d_denoise_slice", "choose_bm3d_sigma"]
