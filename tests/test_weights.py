"""The shipped default denoiser: loadable, described, and better than its input on unseen data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ctpipe.errors import InputError
from ctpipe.weights import DEFAULT_DENOISER, load_default_denoiser, model_card, weights_path
from tests.conftest import shared_path


def test_default_weights_load_in_eval_mode():
    model = load_default_denoiser()
    assert not model.training
    assert model.checkpoint_record["model"]["name"] == "kernel_matched"
    assert sorted(model.networks) == ["sharp", "smooth"] and model.fallback == "sharp"
    for family in ("sharp", "smooth"):
        assert model.networks[family].config["filters"] == 32  # RED-CNN, as the card says
    assert model.select("B30")[0] == "smooth" and model.select("D45")[0] == "sharp"
    assert model.select(None)[0] == "sharp"
    assert weights_path().stat().st_size < 5_000_000


def test_previous_default_still_ships():
    from ctpipe.checkpoints.denoiser import load_denoiser

    model = load_denoiser(weights_path("redcnn32_aapm_cpu.pt"))
    assert model.checkpoint_record["model"]["name"] == "redcnn" and model.config["filters"] == 32
    assert "previous default" in model_card("redcnn32_aapm_cpu.pt")


def test_model_card_describes_data_recipe_and_metrics():
    card = model_card()
    for words in ("L096", "L143", "L192", "pancreas", "BM3D", "PSNR", "SSIM", "workflows/training"):
        assert words in card, words
    for config in ("denoise_redcnn32_kernelval_decay", "denoise_redcnn32_smooth96_margin_decay"):
        assert f"workflows/training/{config}.yaml" in card  # the command chain


def test_unknown_weights_listed():
    with pytest.raises(InputError, match=rf"shipped: .*{DEFAULT_DENOISER}"):
        weights_path("nope.pt")


@pytest.mark.shared_data
def test_denoises_an_unseen_patient_slice():
    from ctpipe.inference import denoise_slice
    from ctpipe.io.aapm import find_aapm_pairs
    from ctpipe.io.dicom_volume import read_dicom_volume
    from ctpipe.metrics import image_quality

    root = shared_path("aapm_ldct_pairs")
    model = load_default_denoiser()
    for kernel in ("D45", "B30"):
        pair = find_aapm_pairs(root, patients=["L192"], kernel=kernel)[0]  # test patient
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low = read_dicom_volume(pair["image"]).hu[:, :, 0]
            normal = read_dicom_volume(pair["label"]).hu[:, :, 0]
        out = denoise_slice(low, model, kernel=kernel)
        before = image_quality(low, normal)
        after = image_quality(out, normal)
        assert after["psnr"] > before["psnr"] + 2.0, kernel
        assert after["ssim"] > before["ssim"], kernel
        assert np.abs(out.mean() - normal.mean()) < 20.0  # HU level kept
