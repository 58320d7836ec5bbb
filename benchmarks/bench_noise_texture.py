"""Noise texture of the low-dose simulator's FBP filters against real quarter-dose noise.

For each reconstruction kernel of the AAPM training pairs (the training patients of a
denoiser config: validation and test slices choose nothing), compares the noise of the
real quarter-dose slice (quarter - full dose) with the noise that
:class:`ctpipe.simulate.LowDoseSimulator` inserts into the full-dose slice with each FBP
filter, at the slice's own exposure (:func:`ctpipe.simulate.photons_for_exposure`):

* the noise power spectrum (NPS): the mean squared magnitude of the 2D FFT of 32 x 32
  soft-tissue patches (smoothed full-dose HU in [-100, 150]), averaged over rings of
  0.05 cycles per pixel and scaled to a peak of 1 (the texture, whatever the level);
* its mean frequency (cycles per pixel) and the mean absolute difference of the scaled
  ring values from the real ones (``shape error``);
* the ratio of the simulated to the real noise std over the same patches (the level).

Usage:
    python benchmarks/bench_noise_texture.py [--config CONFIG] [--slices 5]
        [--kernels B30 D45] [--filters ramp cosine hann]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PATCH = 32
RINGS = np.arange(0.0, 0.65, 0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/denoise_redcnn32_kernelval.yaml")
    )
    parser.add_argument("--slices", type=int, default=5, help="training slices per kernel")
    parser.add_argument("--kernels", nargs="+", default=["B30", "D45"])
    parser.add_argument("--filters", nargs="+", default=None, help="default: all")
    args = parser.parse_args()
    import pydicom

    from ctpipe.evaluate.run import load_slice_pairs
    from ctpipe.simulate import FILTERS, LowDoseSimulator, photons_for_exposure
    from ctpipe.training.denoise.config import load_train_config
    from ctpipe.training.denoise.data import split_pairs

    warnings.filterwarnings("ignore")
    data = load_train_config(args.config).data
    real_entries = [e for e in split_pairs(data).train if "dose" not in e]
    rings = " | ".join(f"{f:.2f}" for f in RINGS[:-1])
    print(f"training pairs of {args.config}; NPS rings from (cycles per pixel): {rings}")
    print("| kernel | noise | std ratio | mean f | shape error | NPS, scaled to a peak of 1 |")
    print("|---|---|---:|---:|---:|---|")
    for kernel in args.kernels:
        entries = [e for e in real_entries if str(e.get("kernel")) == kernel][: args.slices]
        if not entries:
            print(f"| {kernel} | no training pairs | | | | |")
            continue
        pairs = load_slice_pairs(entries)
        regions = [soft_tissue(p.normal_hu) for p in pairs]
        real = [p.low_hu - p.normal_hu for p in pairs]
        reference = texture(real, regions)
        _row(kernel, f"real quarter dose ({len(pairs)} slices)", reference, reference)
        for name in args.filters or FILTERS:
            noise = []
            for entry, pair in zip(entries, pairs, strict=True):
                header = pydicom.dcmread(entry["label"], stop_before_pixels=True)
                photons = photons_for_exposure(float(header.XRayTubeCurrent), float(header.KVP))
                simulator = LowDoseSimulator(0.25, incident_photons=photons, filter_name=name)
                rng = np.random.default_rng(0)
                spacing = float(header.PixelSpacing[0])
                noise.append(
                    simulator.simulate_slice(pair.normal_hu, spacing, rng) - pair.normal_hu
                )
            _row(kernel, f"simulated, {name}", texture(noise, regions), reference)
    return 0


def soft_tissue(full_dose: np.ndarray) -> np.ndarray:
    """Soft tissue of a full-dose slice: smoothed (Gaussian, 3 px) HU in [-100, 150]."""
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(full_dose, 3.0)
    return (smooth >= -100) & (smooth <= 150)


def texture(noise: list[np.ndarray], regions: list[np.ndarray]) -> dict:
    """NPS rings, mean frequency and std of the patches wholly inside the regions."""
    power = np.zeros((PATCH, PATCH))
    values = []
    for image, region in zip(noise, regions, strict=True):
        for i in range(PATCH, image.shape[0] - PATCH, PATCH // 2):
            for j in range(PATCH, image.shape[1] - PATCH, PATCH // 2):
                if region[i : i + PATCH, j : j + PATCH].all():
                    patch = image[i : i + PATCH, j : j + PATCH]
                    patch = patch - patch.mean()
                    power += np.abs(np.fft.fft2(patch)) ** 2
                    values.append(patch)
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(PATCH), np.fft.fftfreq(PATCH)))
    ring = np.array(
        [power[(frequency >= a) & (frequency < b)].mean() for a, b in itertools.pairwise(RINGS)]
    )
    return {
        "rings": ring / ring.max(),
        "mean_f": float((power * frequency).sum() / power.sum()),
        "std": float(np.std(values)),
        "patches": len(values),
    }


def _row(kernel: str, name: str, measured: dict, reference: dict) -> None:
    error = float(np.abs(measured["rings"] - reference["rings"]).mean())
    rings = " ".join(f"{v:.2f}" for v in measured["rings"])
    ratio = measured["std"] / reference["std"]
    print(f"| {kernel} | {name} | {ratio:.2f} | {measured['mean_f']:.3f} | {error:.3f} | {rings} |")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
