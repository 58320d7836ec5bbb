"""The shipped VAE: loadable, described, held-out data kept out, and its map sees a lesion."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.weights import DEFAULT_VAE, load_default_vae, model_card, weights_path
from tests.conftest import shared_path


def test_shipped_vae_loads_with_its_grid_and_training_record():
    model = load_default_vae()
    assert not model.training
    assert model.config["in_shape"] == [128, 128] and model.config["latent_dim"] == 64
    record = model.checkpoint_record
    assert record["grid"] == {"size": [128, 128], "pixel_mm": 3.0, "window": [-160.0, 240.0]}
    held = {s["name"] for s in record["config"]["data"]["holdout"]}
    assert held == {"L192", "pancreas", "totalseg", "radiomics_lung", "dcmqi"}
    trained = {s["name"] for s in record["config"]["data"]["train"]}
    assert {"L096", "L096_upper", "L096_lower"} <= trained
    assert record["note"] == "vae_ct128_cpu.md"
    assert weights_path(DEFAULT_VAE).stat().st_size < 5_000_000


def test_model_card_describes_data_recipe_and_metrics():
    card = model_card(DEFAULT_VAE)
    for words in (
        "L096",
        "L143",
        "L192",
        "pancreas",
        "AUROC",
        "ctpipe train vae",
        "vae_ct128_cpu_stage2.yaml",
        "benchmarks/bench_anomaly.py",
        "benchmarks/bench_ood_guard.py",
        "ctpipe vae calibrate",
        "sha256",
    ):
        assert words in card, words


def test_shipped_vae_carries_a_guard_calibration_of_held_back_slices():
    from ctpipe.anomaly.guard import GUARD_STATISTICS, OODGuard

    model = load_default_vae()
    calibration = OODGuard(model).calibration
    assert calibration.statistics == GUARD_STATISTICS
    assert not any("L192" in source for source in calibration.sources)
    assert calibration.settings["slices"] == len(calibration.reference) >= 100


@pytest.mark.shared_data
def test_shipped_guard_passes_an_unseen_patient_and_flags_it_with_the_wrong_scale():
    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.training.vae.data import read_series

    hu, spacing = read_series(shared_path("aapm_ldct_pairs", "L192", "full_3mm_B30"))
    guard = OODGuard(load_default_vae())
    assert not guard.score(hu, spacing).flagged
    shifted = guard.score(hu + 1024.0, spacing)  # the intercept left out
    assert shifted.flagged and "air around the body" in shifted.warning()


@pytest.mark.shared_data
def test_a_lesion_in_held_out_slices_raises_the_map_there_only():
    from ctpipe.anomaly import RandomLesions, anomaly_volume, insert_lesions
    from ctpipe.training.vae.data import read_series

    hu, spacing = read_series(shared_path("pancreas_ct_series"))
    hu = hu[:, :, 60:62]  # held out of training (slices 45-74)
    generator = RandomLesions(radius_mm=(15, 15), contrast_hu=(80, 80), kinds=("hyper",), seed=0)
    lesions = generator.draw(hu, spacing)
    assert len(lesions) == 2
    lesioned, mask = insert_lesions(hu, spacing, lesions)
    model = load_default_vae()
    before = anomaly_volume(hu, model, spacing=spacing, samples=2)
    after = anomaly_volume(lesioned, model, spacing=spacing, samples=2)
    rise = after.map_hu[mask].mean() - before.map_hu[mask].mean()
    assert rise > 25.0  # HU of reconstruction error where the 80 HU lesion is
    outside = after.body & ~mask
    # the code moves a little, so the rest of the map changes too, but far less
    assert np.abs(after.map_hu[outside] - before.map_hu[outside]).mean() < 0.2 * rise
