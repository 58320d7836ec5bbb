from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from ctpipe.cli.simulate import add_simulate_parser, output_paths
from ctpipe.phantom import make_phantom
from ctpipe.simulate import (
    DEFAULT_INCIDENT_PHOTONS,
    PHOTONS_PER_MA,
    LowDoseSimulator,
    photons_for_exposure,
)
from tests.conftest import shared_path

FAST = {"n_angles": 64}


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(64, 64, 3), spacing=(3.0, 3.0, 3.0), noise_hu=0.0)


def water_disc(size: int = 64, radius: float = 25.0) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    hu = np.full((size, size), -1000.0, np.float32)
    hu[(rows - size / 2) ** 2 + (cols - size / 2) ** 2 < radius**2] = 0.0
    return hu


# --- determinism --------------------------------------------------------------------------


def test_same_seed_same_volume_other_seed_other_noise(phantom) -> None:
    sim = LowDoseSimulator(**FAST)
    a = sim.simulate_volume(phantom.hu, phantom.spacing, seed=3)
    b = sim.simulate_volume(phantom.hu, phantom.spacing, seed=3)
    c = sim.simulate_volume(phantom.hu, phantom.spacing, seed=4)
    assert a.dtype == np.float32 and a.shape == phantom.hu.shape
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_slice_noise_depends_only_on_seed_and_index(phantom) -> None:
    sim = LowDoseSimulator(**FAST)
    volume = sim.simulate_volume(phantom.hu, phantom.spacing, seed=11)
    child = np.random.SeedSequence(11).spawn(3)[2]
    alone = sim.simulate_slice(phantom.hu[:, :, 2], 3.0, np.random.default_rng(child))
    assert np.array_equal(volume[:, :, 2], alone)


# --- noise model ---------------------------------------------------------------------------


def test_full_dose_adds_no_noise(phantom) -> None:
    sim = LowDoseSimulator(dose_fraction=1.0, **FAST)
    out = sim.simulate_volume(phantom.hu, phantom.spacing, seed=0)
    np.testing.assert_allclose(out, phantom.hu, atol=1e-3)


def test_noise_std_scales_with_dose_as_sqrt_of_one_minus_d_over_d(phantom) -> None:
    liver = phantom.mask("liver")
    std = {}
    for seed, dose in enumerate((0.5, 0.25)):
        sim = LowDoseSimulator(dose, incident_photons=1e5, electronic_noise=0.0, **FAST)
        added = sim.simulate_volume(phantom.hu, phantom.spacing, seed=seed) - phantom.hu
        std[dose] = float(added[liver].std())
    expected = np.sqrt((1 - 0.25) / 0.25) / np.sqrt((1 - 0.5) / 0.5)  # sqrt(3)
    assert std[0.25] / std[0.5] == pytest.approx(expected, rel=0.12)


def test_noise_std_scales_as_one_over_sqrt_photons() -> None:
    hu = water_disc()
    std = []
    for seed, photons in enumerate((1e5, 4e5)):
        sim = LowDoseSimulator(incident_photons=photons, electronic_noise=0.0, **FAST)
        std.append(float((sim.simulate_slice(hu, 2.0, np.random.default_rng(seed)) - hu).std()))
    assert std[0] / std[1] == pytest.approx(2.0, rel=0.12)


def test_square_root_angular_modulation_gives_the_least_noise() -> None:
    # Gies et al. 1999: at a fixed dose, tube current ~ sqrt(attenuation) minimises noise.
    rows, cols = np.mgrid[:64, :64]
    hu = np.full((64, 64), -1000.0, np.float32)
    hu[((rows - 32) / 30) ** 2 + ((cols - 32) / 12) ** 2 < 1] = 0.0  # 360 x 144 mm
    std = {}
    for alpha in (0.0, 0.5, 1.0):
        sim = LowDoseSimulator(
            incident_photons=1e5, electronic_noise=0.0, angular_modulation=alpha, **FAST
        )
        added = sim.simulate_slice(hu, 6.0, np.random.default_rng(0)) - hu
        std[alpha] = float(added[22:42, 26:38].std())
    assert std[0.5] < 0.85 * std[0.0]
    assert std[0.5] < 0.85 * std[1.0]


def test_mean_hu_is_preserved_in_a_uniform_region() -> None:
    hu = water_disc()
    sim = LowDoseSimulator(incident_photons=1e5, **FAST)
    centre = (slice(20, 44), slice(20, 44))
    means, stds = [], []
    for seed in range(4):
        out = sim.simulate_slice(hu, 2.0, np.random.default_rng(seed))
        means.append(float(out[centre].mean()))
        stds.append(float(out[centre].std()))
    assert np.mean(stds) > 10.0  # there is noise...
    assert abs(np.mean(means)) < 2.0  # ...but no shift of the mean


def test_matter_outside_the_inscribed_circle_and_rectangular_slices() -> None:
    hu = np.full((40, 64), 40.0, np.float32)  # tissue everywhere, corners included
    sim = LowDoseSimulator(incident_photons=1e5, **FAST)
    out = sim.simulate_slice(hu, 2.0, np.random.default_rng(0))
    assert out.shape == hu.shape
    assert np.std(out[:4, :4] - hu[:4, :4]) > 1.0  # the corner is reconstructed too
    assert abs(float(out.mean()) - 40.0) < 5.0


@pytest.mark.parametrize("shape", [(48, 48), (47, 47), (30, 48), (48, 31), (33, 50)])
@pytest.mark.parametrize("tissue_in_corners", [False, True])
def test_projection_and_reconstruction_stay_aligned_with_the_input(
    shape: tuple[int, int], tissue_in_corners: bool
) -> None:
    from skimage.transform import radon

    from ctpipe.simulate import _reconstruct, _square_support

    mu = np.full(shape, 0.02 if tissue_in_corners else 0.0)
    mu[shape[0] // 3 : shape[0] // 3 + 5, shape[1] // 4 : shape[1] // 4 + 4] = 0.05
    padded, crop = _square_support(mu, 0.02)
    assert padded.shape[0] > max(shape) if tissue_in_corners else padded.shape[0] == max(shape)
    theta = np.linspace(0.0, 180.0, 90, endpoint=False)
    rec = _reconstruct(radon(padded, theta, circle=True), theta, "ramp", max(shape))[crop]
    inner = (slice(3, -3), slice(3, -3))

    def error(shift: tuple[int, int]) -> float:
        return float(np.abs(rec - np.roll(mu, shift, axis=(0, 1)))[inner].sum())

    shifts = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)]
    assert min(shifts, key=error) == (0, 0)


def test_photons_for_exposure() -> None:
    assert photons_for_exposure(200.0) == pytest.approx(200 * PHOTONS_PER_MA)
    assert photons_for_exposure(200.0, kvp=100.0) == pytest.approx(
        200 * PHOTONS_PER_MA * (100 / 120) ** 2
    )
    with pytest.raises(ValueError, match=r"tube_current_ma must be a positive finite number"):
        photons_for_exposure(0.0)


def test_parameters_are_a_json_record() -> None:
    record = LowDoseSimulator(dose_fraction=0.5, filter_name="hann").parameters()
    assert json.loads(json.dumps(record)) == record
    assert record["dose_fraction"] == 0.5
    assert record["incident_photons"] == DEFAULT_INCIDENT_PHOTONS
    assert "Yu et al. 2012" in record["method"]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dose_fraction": 0.0}, r"dose_fraction must be in \(0, 1\], got 0.0"),
        ({"dose_fraction": 1.5}, r"dose_fraction must be in \(0, 1\], got 1.5"),
        ({"dose_fraction": float("nan")}, r"dose_fraction must be in \(0, 1\], got nan"),
        ({"incident_photons": -1.0}, r"incident_photons must be a positive finite number"),
        ({"incident_photons": float("inf")}, r"incident_photons must be .* got inf"),
        ({"electronic_noise": -0.1}, r"electronic_noise must be a finite number >= 0"),
        ({"n_angles": 8}, r"n_angles must be an integer >= 16, got 8"),
        ({"n_angles": 90.0}, r"n_angles must be an integer >= 16, got 90.0"),
        ({"filter_name": "sharp"}, r"filter_name must be one of ramp, .*hann, got 'sharp'"),
        ({"mu_water": 0.0}, r"mu_water must be a positive finite number, got 0.0"),
        ({"angular_modulation": -0.5}, r"angular_modulation must be in \[0, 1\], got -0.5"),
        ({"angular_modulation": 2}, r"angular_modulation must be in \[0, 1\], got 2"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LowDoseSimulator(**kwargs)


@pytest.mark.parametrize(
    ("hu", "spacing", "message"),
    [
        (np.zeros((16, 16, 2)), 1.0, r"hu must be a 2D slice of at least 8x8 pixels"),
        (np.zeros((4, 16)), 1.0, r"at least 8x8 pixels, got shape \(4, 16\)"),
        (np.full((16, 16), np.nan), 1.0, r"hu must be finite, got 256 NaN/inf"),
        (np.zeros((16, 16)), 0.0, r"pixel_spacing_mm must be one or two positive sizes"),
        (np.zeros((16, 16)), (0.7, 0.9), r"pixel_spacing_mm must be square .* \(0.7, 0.9\)"),
    ],
)
def test_bad_slices_are_refused(hu, spacing, message) -> None:
    with pytest.raises(ValueError, match=message):
        LowDoseSimulator(**FAST).simulate_slice(hu, spacing, np.random.default_rng(0))


def test_bad_volume_arguments_are_refused(phantom) -> None:
    sim = LowDoseSimulator(**FAST)
    with pytest.raises(ValueError, match=r"hu must be a 3D \(i, j, k\) volume"):
        sim.simulate_volume(phantom.hu[:, :, 0], (3.0, 3.0, 3.0), seed=0)
    with pytest.raises(ValueError, match=r"spacing must be 3 sizes"):
        sim.simulate_volume(phantom.hu, (3.0, 3.0), seed=0)
    with pytest.raises(ValueError, match=r"one value per slice \(3\), got 2"):
        sim.simulate_volume(phantom.hu, phantom.spacing, seed=0, incident_photons=[1e5, 1e5])
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got -1"):
        sim.simulate_volume(phantom.hu, phantom.spacing, seed=-1)


# --- real data: calibration against the AAPM quarter-dose images -------------------------


def soft_tissue_noise_std(difference: np.ndarray, full_dose: np.ndarray) -> float:
    """Std of a (low - full dose) image over soft tissue well inside the body.

    Soft tissue: full-dose HU smoothed (Gaussian, 3 px) in [0, 100], inside the largest
    body component (smoothed HU > -400, holes filled) eroded by 10 px. The difference of
    a noise-inserted scan and its source is pure noise, so no detrending is needed.
    """
    body = ndimage.binary_fill_holes(ndimage.gaussian_filter(full_dose, 2.0) > -400)
    labels, count = ndimage.label(body)
    if count > 1:
        sizes = ndimage.sum(body, labels, range(1, count + 1))
        body = labels == 1 + int(np.argmax(sizes))
    body = ndimage.binary_erosion(body, iterations=10)
    smooth = ndimage.gaussian_filter(full_dose, 3.0)
    region = body & (smooth >= 0) & (smooth <= 100)
    assert region.sum() > 5000, "too little soft tissue to measure noise"
    return float(difference[region].std())


def aapm_slice(path: str) -> tuple[np.ndarray, float, float, float]:
    """HU (i, j), pixel spacing, tube current and voltage of one AAPM file."""
    import pydicom

    from ctpipe.io.dicom_volume import read_dicom_volume

    volume = read_dicom_volume(path)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    return (
        volume.hu[:, :, 0],
        volume.spacing[0],
        float(header.XRayTubeCurrent),
        float(header.KVP),
    )


# The first pair (lowest z) of each patient scanned with both kernels; all 32 pairs give
# median ratios of about 1.0 per kernel (see the module docstring of ctpipe.simulate).
VALIDATION = [("D45", "L143"), ("D45", "L192"), ("B30", "L143"), ("B30", "L192")]
FILTER_OF_KERNEL = {"D45": "ramp", "B30": "hann"}


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("kernel", ["D45", "B30"])
def test_quarter_dose_noise_matches_the_aapm_data(kernel: str) -> None:
    from ctpipe.io.aapm import find_aapm_pairs

    root = shared_path("aapm_ldct_pairs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = find_aapm_pairs(root, kernel=kernel)
    sim = LowDoseSimulator(0.25, filter_name=FILTER_OF_KERNEL[kernel])
    for patient in [p for k, p in VALIDATION if k == kernel]:
        pair = min((p for p in pairs if p["patient"] == patient), key=lambda p: p["z"])
        full, spacing, current, kvp = aapm_slice(pair["label"])
        quarter = aapm_slice(pair["image"])[0]
        simulated = sim.simulate_slice(
            full,
            spacing,
            np.random.default_rng(0),
            incident_photons=photons_for_exposure(current, kvp),
        )
        real = soft_tissue_noise_std(quarter - full, full)
        ours = soft_tissue_noise_std(simulated - full, full)
        assert ours / real == pytest.approx(1.0, abs=0.25), (patient, pair["z"], real, ours)


# --- command line --------------------------------------------------------------------------


def run_cli(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="ctpipe")
    add_simulate_parser(parser.add_subparsers())
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_defaults_agree_with_the_simulator_and_import_no_numpy() -> None:
    import subprocess
    import sys

    from ctpipe import simulate
    from ctpipe.cli import simulate as cli_simulate

    assert cli_simulate.FILTER_CHOICES == simulate.FILTERS
    assert cli_simulate.DEFAULT_ANGLES == simulate.REFERENCE_VIEWS
    assert cli_simulate.DEFAULT_PHOTONS_PER_MA == simulate.PHOTONS_PER_MA
    assert simulate.LowDoseSimulator().angular_modulation == cli_simulate.DEFAULT_ANGULAR_MODULATION
    code = (
        "import argparse, sys; from ctpipe.cli.simulate import add_simulate_parser; "
        "add_simulate_parser(argparse.ArgumentParser().add_subparsers()); "
        "print('numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_cli_writes_nifti_with_the_input_affine_and_a_sidecar(
    phantom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctpipe.io.nifti import read_nifti, write_nifti

    source = write_nifti(phantom.hu, phantom.to_ras_affine(), tmp_path / "ct.nii.gz")
    code = run_cli("simulate", source, "--output", tmp_path / "out", "--angles", "32")
    assert code == 0, capsys.readouterr().err
    nifti, sidecar = output_paths(source, tmp_path / "out", 0.25)
    array, affine = read_nifti(nifti)
    np.testing.assert_allclose(affine, phantom.to_ras_affine())
    assert array.shape == phantom.hu.shape and array.dtype == np.float32
    assert not np.allclose(array, phantom.hu)
    record = json.loads(sidecar.read_text())
    assert record["simulator"]["dose_fraction"] == 0.25
    assert record["simulator"]["n_angles"] == 32
    assert record["photon_source"] == "default"
    assert record["incident_photons_per_slice"] == [DEFAULT_INCIDENT_PHOTONS] * 3
    assert record["seed"] == 0 and record["output"] == str(nifti)
    assert "simulating" in capsys.readouterr().err  # the progress bar


def test_cli_takes_photons_from_dicom_tube_current(phantom, tmp_path: Path) -> None:
    from ctpipe.export.dicom_series import write_ct_series
    from ctpipe.io.nifti import read_nifti

    folder = tmp_path / "series"
    write_ct_series(phantom.hu, phantom.affine_lps, folder, extra={"XRayTubeCurrent": 200})
    out = tmp_path / "low.nii.gz"
    assert run_cli("simulate", folder, "--output", out, "--dose", "0.5", "--angles", "32") == 0
    record = json.loads((tmp_path / "low.json").read_text())
    assert record["incident_photons_per_slice"] == [pytest.approx(200 * PHOTONS_PER_MA)] * 3
    assert record["photon_source"].startswith("XRayTubeCurrent")
    np.testing.assert_allclose(read_nifti(out)[1], phantom.to_ras_affine(), atol=1e-4)


def test_cli_refuses_bad_dose_and_photons_per_ma_without_dicom(
    phantom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ctpipe.io.nifti import write_nifti

    source = write_nifti(phantom.hu, phantom.to_ras_affine(), tmp_path / "ct.nii.gz")
    assert run_cli("simulate", source, "--output", tmp_path, "--dose", "0") == 2
    assert "dose_fraction must be in (0, 1], got 0.0" in capsys.readouterr().err
    assert run_cli("simulate", source, "--output", tmp_path, "--photons-per-ma", "3000") == 2
    assert "--photons-per-ma needs DICOM input" in capsys.readouterr().err
    assert not list(tmp_path.glob("ct_dose*"))
