"""Segmenters: output shapes in 2D and 3D, class counts, validation and YAML loading."""

from __future__ import annotations

import pytest
import torch
import yaml

from ctpipe.errors import InputError
from ctpipe.nets.segmenters import ABDOMINAL_CLASS_MAP, SegmenterConfig, build_segmenter
from ctpipe.phantom import LABEL_NAMES
from ctpipe.schema import dataclass_to_dict, parse_dataclass

SMALL = {"unet": {"channels": (4, 8, 16), "strides": (2, 2)}, "segresnet": {"init_filters": 8}}


@pytest.mark.parametrize("architecture", ["unet", "segresnet"])
@pytest.mark.parametrize(("spatial_dims", "size"), [(2, (32, 24)), (3, (16, 16, 8))])
def test_output_shape_and_class_count(architecture, spatial_dims, size):
    config = SegmenterConfig(
        architecture, spatial_dims, {"liver": 1, "spleen": 2}, **SMALL[architecture]
    )
    model = build_segmenter(config)
    assert sum(p.numel() for p in model.parameters()) > 0
    with torch.no_grad():
        out = model(torch.zeros(2, 1, *size))
    assert out.shape == (2, 3, *size)
    assert config.out_channels == 3


def test_default_class_map_is_the_phantom_labels():
    assert dict(ABDOMINAL_CLASS_MAP) == dict(LABEL_NAMES)
    config = SegmenterConfig()
    assert config.out_channels == len(LABEL_NAMES) + 1
    assert config.class_names[:3] == ("background", "liver", "spleen")
    assert config.size_divisor == 16


def test_class_names_follow_label_order():
    config = SegmenterConfig(class_map={"spleen": 2, "liver": 1})
    assert config.class_names == ("background", "liver", "spleen")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"architecture": "vnet"}, "architecture must be 'unet' or 'segresnet', got 'vnet'"),
        ({"spatial_dims": 4}, "spatial_dims must be 2 or 3, got 4"),
        ({"class_map": {}}, "class_map must be a non-empty mapping"),
        ({"class_map": {"": 1}}, "class_map names must be non-empty strings, got ''"),
        ({"class_map": {"background": 1}}, "must not name 'background'"),
        ({"class_map": {"liver": 1.0}}, r"class_map\['liver'\] must be an integer"),
        ({"class_map": {"a": 1, "b": 1}}, r"exactly 1 \.\. 2 .*got \[1, 1\]"),
        ({"class_map": {"a": 1, "b": 3}}, r"exactly 1 \.\. 2 .*got \[1, 3\]"),
        ({"class_map": {"a": 0}}, r"exactly 1 \.\. 1 .*got \[0\]"),
        ({"channels": (8,), "strides": ()}, r"channels must be at least 2 positive integers"),
        ({"channels": (8, 16), "strides": (2, 2)}, r"strides must have len\(channels\) - 1 = 1"),
        ({"num_res_units": -1}, "num_res_units must be >= 0, got -1"),
        ({"init_filters": 12}, "init_filters must be a multiple of 8, got 12"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_invalid_configs_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SegmenterConfig(**kwargs)


YAML = """
architecture: segresnet
spatial_dims: 2
class_map:
  liver: 1
  kidney_left: 2
init_filters: 8
blocks_down: [1, 2]
"""


def test_config_loads_from_yaml_and_round_trips():
    config = parse_dataclass(SegmenterConfig, yaml.safe_load(YAML), source="seg.yaml")
    assert config.architecture == "segresnet"
    assert config.class_names == ("background", "liver", "kidney_left")
    assert config.blocks_down == (1, 2)
    assert parse_dataclass(SegmenterConfig, dataclass_to_dict(config)) == config
    with torch.no_grad():
        out = build_segmenter(config)(torch.zeros(1, 1, 16, 16))
    assert out.shape == (1, 3, 16, 16)


def test_yaml_unknown_key_is_named():
    data = yaml.safe_load(YAML + "chanels: [4, 8]\n")
    with pytest.raises(InputError, match=r"seg.yaml: unknown key 'chanels'.*'channels'"):
        parse_dataclass(SegmenterConfig, data, source="seg.yaml")


def test_yaml_rule_errors_name_the_source():
    data = yaml.safe_load(YAML.replace("kidney_left: 2", "kidney_left: 5"))
    with pytest.raises(InputError, match=r"seg.yaml: class_map label values must be exactly"):
        parse_dataclass(SegmenterConfig, data, source="seg.yaml")
