"""Segmentation cases: datalists, label remapping and the preprocessing chain."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from ctpipe.errors import InputError
from ctpipe.nets.segmenters import ABDOMINAL_CLASS_MAP
from ctpipe.phantom import make_phantom, write_phantom
from ctpipe.training.segment.config import SegmentDataConfig, SegmentTrainConfig
from ctpipe.training.segment.data import (
    RemapLabelsd,
    build_segment_loaders,
    case_transforms,
    split_cases,
)


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    phantom = make_phantom(shape=(40, 36, 6), spacing=(4.0, 4.0, 6.0), noise_hu=0.0)
    return phantom, write_phantom(folder, phantom)


def config_for(data: dict, **sections) -> SegmentTrainConfig:
    return SegmentTrainConfig.from_dict(
        {
            "model": {"spatial_dims": 2, "channels": [4, 8], "strides": [2]},
            "data": data,
            "preprocess": {"target_spacing": None, "hu_window": [-1000, 1000]},
            "patches": {"size": [16, 16], "per_volume": 2},
            "train": {"batch_size": 2},
            "inference": {"roi_size": [16, 16]},
            "output_dir": "unused",
            **sections,
        }
    )


def test_remap_takes_listed_values_and_zeros_the_rest():
    # TotalSegmentator-like values: liver 5, spleen 1, vertebrae 26..50
    remap = RemapLabelsd(
        "label",
        {"liver": (5,), "spleen": (1,), "spine": tuple(range(26, 51))},
        {"liver": 1, "spleen": 2, "spine": 3},
    )
    source = torch.tensor([0, 1, 2, 5, 26, 33, 50, 51, 117, 255], dtype=torch.float32)
    assert remap({"label": source})["label"].tolist() == [0, 2, 0, 1, 3, 3, 3, 0, 0, 0]


def test_remap_refuses_fractional_and_out_of_map_values():
    identity = RemapLabelsd("label", None, {"liver": 1, "spleen": 2})
    with pytest.raises(InputError, match=r"label values must lie in 0 \.\. 2 .* up to 5"):
        identity({"label": torch.tensor([0.0, 5.0])})
    with pytest.raises(InputError, match="label map has fractional values"):
        identity({"label": torch.tensor([0.0, 0.5])})


def test_datalist_paths_are_relative_to_its_folder(tmp_path, phantom_files):
    _, files = phantom_files
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for n in range(3):
        (tmp_path / "imagesTr" / f"case{n}.nii.gz").write_bytes(files.ct_nifti.read_bytes())
        (tmp_path / "labelsTr" / f"case{n}.nii.gz").write_bytes(files.labels_nifti.read_bytes())
    entries = [
        {"image": f"./imagesTr/case{n}.nii.gz", "label": f"./labelsTr/case{n}.nii.gz"}
        for n in range(3)
    ]
    datalist = tmp_path / "dataset.json"
    datalist.write_text(json.dumps({"training": entries[:2], "validation": entries[2:]}))
    split = split_cases(SegmentDataConfig(datalist=str(datalist), validation_key="validation"))
    assert [e["image"] for e in split.train] == [
        str(tmp_path / "imagesTr" / f"case{n}.nii.gz") for n in (0, 1)
    ]
    assert split.validation[0]["label"] == str(tmp_path / "labelsTr" / "case2.nii.gz")
    held = split_cases(SegmentDataConfig(datalist=str(datalist), validation_holdout=1))
    assert (len(held.train), held.validation[0]["image"]) == (1, split.train[1]["image"])


def test_datalist_errors_name_the_file(tmp_path):
    datalist = tmp_path / "dataset.json"
    datalist.write_text(json.dumps({"training": [{"image": "a.nii.gz", "label": "b.nii.gz"}]}))
    with pytest.raises(InputError, match=r"dataset\.json: not a usable datalist: .*validation"):
        split_cases(SegmentDataConfig(datalist=str(datalist), validation_key="validation"))
    with pytest.raises(InputError, match=r"a\.nii\.gz: image of a training case does not exist"):
        split_cases(SegmentDataConfig(datalist=str(datalist)))
    with pytest.raises(InputError, match=r"nothing\.json: datalist file does not exist"):
        split_cases(SegmentDataConfig(datalist=str(tmp_path / "nothing.json")))


def test_labels_stored_flipped_are_aligned_by_geometry(tmp_path, phantom_files):
    """A label file stored upside down along j (as TotalSegmentator's DICOM example) lands
    on the right voxels: the chain aligns by the affines, not by the array order."""
    phantom, files = phantom_files
    flipped = phantom.labels[:, ::-1, :].copy()
    affine = phantom.to_ras_affine() @ np.array(
        [[1, 0, 0, 0], [0, -1, 0, phantom.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1]], float
    )
    label_path = tmp_path / "flipped_labels.nii.gz"
    nib.save(nib.Nifti1Image(flipped, affine), label_path)
    config = config_for({"train": [{"image": str(files.ct_nifti), "label": str(label_path)}]})
    case = case_transforms(config)(split_cases(config.data).train[0])
    np.testing.assert_array_equal(case["label"][0].numpy(), phantom.labels)
    assert float(case["image"].min()) >= 0.0 and float(case["image"].max()) <= 1.0


def test_unmapped_label_values_fail_with_the_file_named(tmp_path, phantom_files):
    phantom, files = phantom_files
    path = tmp_path / "big_values.nii.gz"
    nib.save(nib.Nifti1Image(phantom.labels * 20, phantom.to_ras_affine()), path)
    config = config_for({"train": [{"image": str(files.ct_nifti), "label": str(path)}]})
    with pytest.raises(InputError, match=r"big_values\.nii\.gz: label values must lie in 0 \.\. 7"):
        build_segment_loaders(config)


def test_loader_gives_patches_of_the_configured_size(phantom_files):
    _, files = phantom_files
    case = {"image": str(files.ct_nifti), "label": str(files.labels_nifti)}
    config = config_for({"train": [case], "validation": [case]})
    train, validation = build_segment_loaders(config)
    batch = next(iter(train))
    assert tuple(batch["image"].shape) == (2, 1, 16, 16)  # per_volume patches of one case
    assert set(torch.unique(batch["label"]).tolist()) <= set(range(len(ABDOMINAL_CLASS_MAP) + 1))
    whole = next(iter(validation))
    assert tuple(whole["label"].shape) == (1, 1, 40, 36, 6)
