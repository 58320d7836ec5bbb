"""Lesion trials, their AUROCs, and the overlay and JSON outputs."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ctpipe.anomaly import (
    RandomLesions,
    anomaly_volume,
    auroc,
    lesion_trial,
    summarise_trials,
    write_anomaly_overlay,
    write_anomaly_record,
)
from tests.anomaly.conftest import GRID


def test_trial_pools_pixels_and_pairs_slices(tiny_vae, phantom_volume):
    hu, spacing = phantom_volume
    lesions = RandomLesions(radius_mm=(6.0, 10.0), seed=2)
    trial = lesion_trial(
        hu,
        spacing,
        tiny_vae,
        lesions,
        slices=[1, 2, 3],
        name="phantom",
        grid=GRID,
        sigma=0.1,
        samples=1,
    )
    assert {lesion.slice_index for lesion in trial.lesions} <= {1, 2, 3}
    assert trial.clean_scores.shape == trial.lesion_scores.shape == (len(trial.lesions),)
    assert trial.pixel_labels.sum() > 0 and (~trial.pixel_labels).sum() > trial.pixel_labels.sum()
    assert set(np.unique(trial.pixel_kinds)) <= {"", "hypo", "hyper"}
    summary = summarise_trials([trial, trial])
    assert summary["pixel"]["auroc"] == auroc(trial.pixel_scores, trial.pixel_labels)
    assert summary["slices"] == 2 * len(trial.lesions)
    assert 0.0 <= summary["slice"]["auroc_neg_elbo"] <= 1.0


def test_an_oracle_map_scores_one():
    # a scorer whose map is the lesion itself would score AUROC 1; the pooled code agrees
    labels = np.r_[np.zeros(50, bool), np.ones(5, bool)]
    scores = labels * 40.0 + np.linspace(0, 1, 55)
    assert auroc(scores, labels) == 1.0


def test_overlay_png_and_record(tiny_vae, phantom_volume, tmp_path):
    hu, spacing = phantom_volume
    result = anomaly_volume(hu, tiny_vae, spacing=spacing, grid=GRID, sigma=0.1, samples=1)
    path = write_anomaly_overlay(hu, result, tmp_path / "overlay.png", slice_index=2)
    image = Image.open(path)
    assert image.size == (2 * hu.shape[0] + 4, hu.shape[1]) and image.mode == "RGB"
    pixels = np.asarray(image).astype(int)
    left, right = pixels[:, : hu.shape[0]], pixels[:, hu.shape[0] + 4 :]
    assert (left[..., 0] == left[..., 2]).all()  # the CT panel is grey
    assert (right[..., 0] != right[..., 2]).any()  # the map is coloured on the right
    record = json.loads(
        write_anomaly_record(result, tmp_path / "s.json", extra={"a": 1}).read_text()
    )
    assert record["format"] == "ctpipe.anomaly" and record["a"] == 1
    assert [row["slice"] for row in record["slices"]] == [0, 1, 2, 3]
