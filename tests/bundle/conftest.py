"""A tiny MONAI bundle in the Model Zoo's layout, trained for a few seconds on the phantom.

The inference config is modelled on ``spleen_ct_segmentation``'s: ``LoadImaged``,
``EnsureChannelFirstd``, ``Orientationd(axcodes="RAS")``, ``Spacingd``,
``ScaleIntensityRanged``, a 3-D UNet, a ``SlidingWindowInferer`` and a postprocessing of
``Activationsd`` (softmax), ``Invertd``, ``AsDiscreted`` (argmax) and ``SaveImaged``,
run by a ``SupervisedEvaluator`` with a ``CheckpointLoader``, so that
``monai.bundle.run`` runs it as it is.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ctpipe.phantom import LABEL_NAMES, make_phantom, write_phantom

#: The bundle's classes: channel -> name, and the bundle's label of each.
CHANNELS = {"0": "background", "1": "liver", "2": "spleen"}
PHANTOM_LABELS = {"liver": 1, "spleen": 2}
PIXDIM = [4.0, 4.0, 3.0]
ROI_SIZE = (32, 32, 8)
NETWORK = {
    "_target_": "UNet",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [8, 16],
    "strides": [2],
    "num_res_units": 1,
    "norm": "batch",
}

INFERENCE = {
    "imports": ["$import glob", "$import os"],
    "bundle_root": ".",
    "output_dir": "$@bundle_root + '/eval'",
    "dataset_dir": "/workspace/data/phantom",
    "datalist": "$list(sorted(glob.glob(@dataset_dir + '/imagesTs/*.nii.gz')))",
    "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
    "network_def": NETWORK,
    "network": "$@network_def.to(@device)",
    "preprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": PIXDIM, "mode": "bilinear"},
            {
                "_target_": "ScaleIntensityRanged",
                "keys": "image",
                "a_min": -200,
                "a_max": 300,
                "b_min": 0,
                "b_max": 1,
                "clip": True,
            },
            {"_target_": "EnsureTyped", "keys": "image"},
        ],
    },
    "dataset": {
        "_target_": "Dataset",
        "data": "$[{'image': i} for i in @datalist]",
        "transform": "@preprocessing",
    },
    "dataloader": {
        "_target_": "DataLoader",
        "dataset": "@dataset",
        "batch_size": 1,
        "shuffle": False,
        "num_workers": 0,
    },
    "inferer": {
        "_target_": "SlidingWindowInferer",
        "roi_size": list(ROI_SIZE),
        "sw_batch_size": 2,
        "overlap": 0.25,
    },
    "postprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {
                "_target_": "Invertd",
                "keys": "pred",
                "transform": "@preprocessing",
                "orig_keys": "image",
                "nearest_interp": False,
                "to_tensor": True,
            },
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {
                "_target_": "SaveImaged",
                "keys": "pred",
                "output_dir": "@output_dir",
                "output_ext": ".nii.gz",
                "output_dtype": "$numpy.uint8",
                "output_postfix": "seg",
                "separate_folder": False,
                "resample": False,
            },
        ],
    },
    "handlers": [{"_target_": "StatsHandler", "iteration_log": False}],
    "evaluator": {
        "_target_": "SupervisedEvaluator",
        "device": "@device",
        "val_data_loader": "@dataloader",
        "network": "@network",
        "inferer": "@inferer",
        "postprocessing": "@postprocessing",
        "val_handlers": "@handlers",
        "amp": True,
    },
    "checkpointloader": {
        "_target_": "CheckpointLoader",
        "load_path": "$@bundle_root + '/models/model.pt'",
        "load_dict": {"model": "@network"},
    },
    "initialize": ["$monai.utils.set_determinism(seed=123)", "$@checkpointloader(@evaluator)"],
    "run": ["$@evaluator.run()"],
}

METADATA = {
    "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
    "version": "0.1.0",
    "changelog": {"0.1.0": "a test bundle"},
    "monai_version": "1.4.0",
    "pytorch_version": "2.4.0",
    "numpy_version": "1.24.4",
    "name": "Phantom liver and spleen",
    "task": "Phantom organ segmentation",
    "description": "A tiny 3-D UNet trained for seconds on ctpipe's phantom (tests only)",
    "authors": "ctpipe tests",
    "copyright": "Copyright (c) ctpipe developers",
    "network_data_format": {
        "inputs": {
            "image": {
                "type": "image",
                "format": "hounsfield",
                "modality": "CT",
                "num_channels": 1,
                "spatial_shape": [32, 32, 8],
                "dtype": "float32",
                "value_range": [0, 1],
                "is_patch_data": True,
                "channel_def": {"0": "image"},
            }
        },
        "outputs": {
            "pred": {
                "type": "image",
                "format": "segmentation",
                "num_channels": 3,
                "spatial_shape": [32, 32, 8],
                "dtype": "float32",
                "value_range": [0, 1],
                "is_patch_data": True,
                "channel_def": CHANNELS,
            }
        },
    },
}


def build_network() -> torch.nn.Module:
    from monai.networks.nets import UNet

    kwargs = {k: v for k, v in NETWORK.items() if k != "_target_"}
    return UNet(**kwargs)


def write_bundle(
    folder: Path,
    weights: dict[str, torch.Tensor],
    *,
    models: tuple[str, ...] = ("model.pt", "model.ts"),
    inference: dict | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write the bundle: configs/inference.json, configs/metadata.json, models/."""
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    config = inference if inference is not None else INFERENCE
    (folder / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    meta = metadata if metadata is not None else METADATA
    (folder / "configs" / "metadata.json").write_text(json.dumps(meta, indent=2))
    network = build_network()
    network.load_state_dict(weights)
    network.eval()
    if "model.pt" in models:
        torch.save(network.state_dict(), folder / "models" / "model.pt")
    if "model.ts" in models:
        torch.jit.script(network).save(str(folder / "models" / "model.ts"))
    return folder


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory):
    """The phantom (96 x 96 x 12, 1.5 x 1.5 x 3 mm) as DICOM (LPS) and NIfTI."""
    phantom = make_phantom(shape=(96, 96, 12), spacing=(1.5, 1.5, 3.0), seed=3)
    return phantom, write_phantom(tmp_path_factory.mktemp("bundle_phantom"), phantom)


@pytest.fixture(scope="session")
def trained_weights(phantom_files) -> dict[str, torch.Tensor]:
    """The UNet trained for a few seconds on the phantom, through the bundle's transforms."""
    from monai.losses import DiceCELoss
    from monai.transforms import (
        Compose,
        DivisiblePadd,
        EnsureChannelFirstd,
        LoadImaged,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
    )

    _, files = phantom_files
    prepare = Compose(
        [
            LoadImaged(keys=["image", "label"], image_only=True),
            EnsureChannelFirstd(keys=["image", "label"]),
            Orientationd(keys=["image", "label"], axcodes="RAS"),
            Spacingd(keys=["image", "label"], pixdim=PIXDIM, mode=("bilinear", "nearest")),
            ScaleIntensityRanged(keys="image", a_min=-200, a_max=300, b_min=0, b_max=1, clip=True),
            DivisiblePadd(keys=["image", "label"], k=4),
        ]
    )
    data = prepare({"image": str(files.ct_nifti), "label": str(files.labels_nifti)})
    image = data["image"].as_tensor()[None].float()
    source = data["label"].as_tensor()[None].long()
    label = torch.zeros_like(source)
    for name, value in PHANTOM_LABELS.items():
        label[source == LABEL_NAMES[name]] = value
    torch.manual_seed(0)
    crops = torch.Generator().manual_seed(0)
    network = build_network()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    network.train()
    for _ in range(200):  # random windows of the inferer's size: about 4 s on one CPU core
        i, j, k = (
            int(torch.randint(0, n - size + 1, (1,), generator=crops))
            for n, size in zip(image.shape[2:], ROI_SIZE, strict=True)
        )
        window = (
            ...,
            slice(i, i + ROI_SIZE[0]),
            slice(j, j + ROI_SIZE[1]),
            slice(k, k + ROI_SIZE[2]),
        )
        optimiser.zero_grad()
        value = loss(network(image[window]), label[window])
        value.backward()
        optimiser.step()
    return copy.deepcopy(network.state_dict())


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory, trained_weights) -> Path:
    """The bundle with both models/model.pt and models/model.ts."""
    return write_bundle(tmp_path_factory.mktemp("bundles") / "phantom_bundle", trained_weights)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)
