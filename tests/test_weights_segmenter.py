"""The shipped default segmenter: loadable, self-describing, and useful on unseen slices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ctpipe.nets.segmenters import ABDOMINAL_CLASS_MAP
from ctpipe.weights import DEFAULT_SEGMENTER, load_default_segmenter, model_card, weights_path
from tests.conftest import shared_path


def test_default_segmenter_loads_with_its_config_and_settings():
    model, config = load_default_segmenter()
    assert not model.training
    assert dict(config.class_map) == dict(ABDOMINAL_CLASS_MAP)
    assert config.spatial_dims == 2
    settings = model.checkpoint_record["inference"]
    assert settings["target_spacing"] == [3.0, 3.0, None] and settings["axcodes"] == "LPS"
    assert weights_path(DEFAULT_SEGMENTER).stat().st_size < 5_000_000
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 64, 64)).shape == (1, config.out_channels, 64, 64)


def test_model_card_describes_data_recipe_metrics_and_limits():
    card = model_card(DEFAULT_SEGMENTER)
    for words in (
        "totalseg_example",
        "TotalSegmentator v2's output",
        "dcmqi_ct3slice",
        "workflows/training/segment_unet2d_cpu.yaml",
        "ctpipe train segment",
        "Dice",
        "HD95",
        "Limitations",
    ):
        assert words in card, words


@pytest.mark.shared_data
def test_segments_liver_and_spine_of_the_unseen_dcmqi_slices():
    """The test slices were never trained on: liver and spine Dice well above chance."""
    from ctpipe.evaluate.segmentation import dice_per_class, reference_labels
    from ctpipe.io.reader import load_ct
    from ctpipe.segment import segment_volume

    folder = shared_path("dcmqi_ct3slice")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the masks beside the slices
        image = load_ct(folder)
    model, config = load_default_segmenter()
    labels = segment_volume(image, model, config=config, **model.checkpoint_record["inference"])
    assert labels.shape == image.shape and torch.equal(labels.affine, image.affine)
    masks = {
        "liver": (folder / "liver_seg.nrrd", [1]),
        "spine": (folder / "spine_seg.nrrd", [2]),
    }
    reference = reference_labels(masks, image, config.class_map)
    scores = dice_per_class(labels.numpy(), reference, {k: config.class_map[k] for k in masks})
    assert scores["liver"] > 0.8, scores
    assert scores["spine"] > 0.7, scores
    assert np.isin(labels.numpy(), np.arange(config.out_channels)).all()
