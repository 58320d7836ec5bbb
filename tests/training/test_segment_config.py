"""SegmentTrainConfig: shipped YAML, defaults, and errors naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ctpipe.training.config import TrainConfigError
from ctpipe.training.segment.config import SegmentTrainConfig, load_segment_config
from tests.conftest import REPO

SHIPPED = REPO / "workflows" / "training" / "segment_unet2d_cpu.yaml"

BASE = {
    "model": {
        "spatial_dims": 2,
        "class_map": {"liver": 1, "spine": 2},
        "channels": [8, 16, 32],
        "strides": [2, 2],
    },
    "data": {
        "train": [{"image": "ct.nii.gz", "label": "seg.nii.gz"}],
        "label_values": {"liver": 5, "spine": [26, 27]},
    },
    "patches": {"size": [64, 64], "per_volume": 4},
    "train": {"batch_size": 8},
    "inference": {"roi_size": [96, 96]},
    "output_dir": "runs/test",
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "segment.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def changed(section: str, **values) -> dict:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    data[section] = {**data.get(section, {}), **values}
    return data


def test_shipped_config_maps_totalsegmentator_labels():
    config = load_segment_config(SHIPPED)
    assert config.model.spatial_dims == 2
    assert dict(config.model.class_map) == {
        "liver": 1,
        "spleen": 2,
        "kidney_right": 3,
        "kidney_left": 4,
        "spine": 5,
        "lung_right": 6,
        "lung_left": 7,
    }
    values = config.data.label_values
    # TotalSegmentator v2: liver 5, spleen 1, kidneys 2 and 3, vertebrae S1..C1 26..50
    assert (values["liver"], values["spleen"]) == ((5,), (1,))
    assert (values["kidney_right"], values["kidney_left"]) == ((2,), (3,))
    assert values["spine"] == tuple(range(26, 51))
    assert config.preprocess.target_spacing == (3.0, 3.0, None)
    assert config.train.device == "cpu" and not config.train.amp
    assert "dcmqi" not in SHIPPED.read_text().split("model:")[1]  # the test set is not used


def test_minimal_config_defaults_and_round_trip(tmp_path):
    config = load_segment_config(write(tmp_path, BASE))
    assert config.train.loss.name == "dice_ce" and not config.train.loss.include_background
    assert config.preprocess.axcodes == "LPS"
    assert config.volumes_per_batch == 2
    assert SegmentTrainConfig.from_dict(config.to_dict()) == config


def test_null_spacing_entry_keeps_an_axis(tmp_path):
    data = changed("preprocess", target_spacing=[2.0, 2.0, None])
    assert load_segment_config(write(tmp_path, data)).preprocess.target_spacing == (
        2.0,
        2.0,
        None,
    )


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (
            changed("data", label_value={"liver": 5}),
            r"unknown key 'data\.label_value'; allowed keys at data: .*"
            r"did you mean 'label_values'\?",
        ),
        (
            changed("train", loss={"nmae": "dice"}),
            r"unknown key 'train\.loss\.nmae'.*did you mean 'name'\?",
        ),
        (changed("patches", size="64"), r"patches\.size must be a list, got str '64'"),
        (changed("train", loss={"name": "focal"}), r"train\.loss\.name must be one of dice"),
        (
            changed("data", train=[{"image": "a.nii"}]),
            r"key 'data\.train\[0\]\.label' is required",
        ),
    ],
)
def test_schema_errors_name_the_key_path(tmp_path, data, pattern):
    with pytest.raises(TrainConfigError, match=pattern) as info:
        load_segment_config(write(tmp_path, data))
    assert str(info.value).startswith(str(tmp_path / "segment.yaml"))


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (
            changed("data", label_values={"livr": 5, "spine": 26}),
            r"data\.label_values names 'livr', which is not a class of model\.class_map "
            r"\(liver, spine\); did you mean 'liver'\?",
        ),
        (
            changed("data", label_values={"liver": 5}),
            r"data\.label_values has no source values for spine",
        ),
        (
            changed("data", label_values={"liver": [5, 26], "spine": 26}),
            r"data: label_values: value 26 is given to both 'liver' and 'spine'",
        ),
        (
            changed("data", label_values={"liver": 0, "spine": 26}),
            r"label_values\['liver'\] must be a positive integer label value",
        ),
        (
            changed("patches", size=[64, 64, 16]),
            r"patches\.size must be 2 multiples of the model's size divisor \(4\) for a 2-D",
        ),
        (changed("patches", size=[64, 66]), r"patches\.size must be 2 multiples"),
        (
            changed("inference", roi_size=[90, 96]),
            r"inference\.roi_size must be multiples of the segmenter's size_divisor \(4\)",
        ),
        (
            changed("train", batch_size=6),
            r"train\.batch_size must be a multiple of patches\.per_volume",
        ),
        (
            changed("train", loss={"class_weights": [1, 1]}),
            r"train\.loss\.class_weights must have one weight per class with the background "
            r"first \(3: background, liver, spine\), got 2",
        ),
        (
            changed("train", loss={"name": "ce"}),
            r"include_background must be true for name 'ce'",
        ),
        (changed("preprocess", axcodes="LPQ"), r"preprocess: axcodes must be three letters"),
        (
            changed("preprocess", target_spacing=[1.0, -1.0, 2.0]),
            r"preprocess: target_spacing must be None or three positive numbers",
        ),
        (changed("model", class_map={"liver": 2}), r"model: class_map label values must be"),
    ],
)
def test_value_rules_name_the_section(tmp_path, data, pattern):
    with pytest.raises(TrainConfigError, match=pattern):
        load_segment_config(write(tmp_path, data))


def test_data_needs_a_source(tmp_path):
    data = changed("data")
    data["data"] = {}
    with pytest.raises(TrainConfigError, match="data: datalist or train must be given"):
        load_segment_config(write(tmp_path, data))


def test_missing_file():
    with pytest.raises(TrainConfigError, match="cannot read training config"):
        load_segment_config("/no/such/segment.yaml")
