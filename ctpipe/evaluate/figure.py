"""The comparison figure of one slice: input, outputs and reference over their differences.

:func:`write_comparison_figure` shows each image in the display window and below it its
difference to the normal-dose reference in a symmetric HU range, titled with PSNR and
SSIM. Slices are arrays indexed ``(i, j)`` = (column, row) like ctpipe volumes; figures
show them as the DICOM display does (rows down, columns across).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ctpipe.io.atomic import atomic_path
from ctpipe.metrics import denoising_quality
from ctpipe.transforms import DISPLAY_WINDOW

if TYPE_CHECKING:
    from ctpipe.evaluate.pairs import SlicePair

__all__ = ["DIFF_RANGE_HU", "write_comparison_figure"]

#: Default half-width (HU) of the difference maps' colour range.
DIFF_RANGE_HU = 100.0


def write_comparison_figure(
    path: str | PathLike[str],
    pair: SlicePair,
    outputs: Mapping[str, np.ndarray],
    *,
    scores: Mapping[str, Mapping[str, float]] | None = None,
    window: tuple[float, float] = DISPLAY_WINDOW,
    diff_range_hu: float = DIFF_RANGE_HU,
) -> Path:
    """Draw input, outputs and reference over their differences to the reference; save PNG.

    The top row shows the low-dose input, each method's output (except
    :data:`~ctpipe.evaluate.run.LDCT_INPUT`, which is the input) and the normal-dose
    reference, all in ``window``; the bottom row shows ``image - reference`` under each
    image, in [-diff_range_hu, diff_range_hu] HU. Titles give PSNR and SSIM on the full
    range and in the window (computed here when ``scores`` lacks them).

    Args:
        path: PNG to write (atomically; its folder is created).
        pair: The slice pair.
        outputs: Method name -> output HU, same shape as the pair.
        scores: Method name -> metrics as from :func:`ctpipe.metrics.denoising_quality`.
        window: Display window (HU).
        diff_range_hu: Half-width of the difference maps' range, > 0.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``diff_range_hu`` is not positive or an output's shape differs.
    """
    if not (math.isfinite(diff_range_hu) and diff_range_hu > 0):
        raise ValueError(f"diff_range_hu must be a positive number, got {diff_range_hu}")
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    from ctpipe.evaluate.pairs import LDCT_INPUT

    panels: list[tuple[str, np.ndarray]] = [(LDCT_INPUT, pair.low_hu)]
    panels += [(name, np.asarray(out)) for name, out in outputs.items() if name != LDCT_INPUT]
    for name, image in panels:
        if image.shape != pair.normal_hu.shape:
            raise ValueError(
                f"output of {name!r} has shape {image.shape}, the pair {pair.normal_hu.shape}"
            )
    scores = dict(scores or {})
    columns = len(panels) + 1
    figure = Figure(figsize=(3.2 * columns, 7.0), layout="constrained")
    axes = figure.subplots(2, columns, squeeze=False)
    low, high = window
    for column, (name, image) in enumerate(panels):
        quality = scores.get(name) or denoising_quality(image, pair.normal_hu, window=window)
        shown = axes[0, column].imshow(image.T, cmap="gray", vmin=low, vmax=high)
        axes[0, column].set_title(
            f"{name}\nPSNR {quality['psnr_full']:.2f} dB, SSIM {quality['ssim_full']:.3f}\n"
            f"window: {quality['psnr_window']:.2f} dB, {quality['ssim_window']:.3f}",
            fontsize=9,
        )
        difference = axes[1, column].imshow(
            (image - pair.normal_hu).T, cmap="RdBu_r", vmin=-diff_range_hu, vmax=diff_range_hu
        )
        axes[1, column].set_title(
            f"{name} - reference\nRMSE {quality['rmse_hu_full']:.1f} HU", fontsize=9
        )
    axes[0, -1].imshow(pair.normal_hu.T, cmap="gray", vmin=low, vmax=high)
    axes[0, -1].set_title("Reference (normal dose)", fontsize=9)
    axes[1, -1].set_visible(False)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(shown, ax=axes[0, :].tolist(), shrink=0.8, label="HU")
    figure.colorbar(difference, ax=axes[1, :].tolist(), shrink=0.8, label="difference (HU)")
    figure.suptitle(
        f"{pair.name}\nimages in [{low:g}, {high:g}] HU, differences in ±{diff_range_hu:g} HU; "
        f"PSNR/SSIM on the full range [-1024, 3072] HU and in the window"
    )
    path = Path(path)
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=140)
    return path
