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
    assert model.config["filters"] == 32
    record = model.checkpoint_record
    assert record["model"]["name"] == "redcnn"
    assert weights_path().stat().st_size < 5_000_000


def test_model_card_describes_data_recipe_and_metrics():
    card = model_card()
    for words in ("L096", "L143", "L192", "pancreas", "BM3D", "PSNR", "SSIM", "workflows/training"):
        assert words in card, words


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
    pair = find_aapm_pairs(root, patients=["L192"], kernel="D45")[0]  # test patient
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low = read_dicom_volume(pair["image"]).hu[:, :, 0]
        normal = read_dicom_volume(pair["label"]).hu[:, :, 0]
    out = denoise_slice(low, load_default_denoiser())
    before = image_quality(low, normal)
    after = image_quality(out, normal)
    assert after["psnr"] > before["psnr"] + 2.0
    assert after["ssim"] > before["ssim"]
    assert np.abs(out.mean() - normal.mean()) < 20.0  # HU level kept
