"""segment_volume: labels on the input grid, resampling path, 2-D and 3-D, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from torch import nn
from torch.nn import functional as F

from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
from ctpipe.phantom import make_phantom
from ctpipe.segment import segment_volume

HU_WINDOW = (-1000.0, 1000.0)
BONE_HU = 300.0
THRESHOLD = (BONE_HU - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0])  # 300 HU in [0, 1]


class Threshold(nn.Module):
    """Two-channel logits ``[-(x - t), x - t]``: label 1 where the input exceeds ``t``."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-(x - self.t), x - self.t], dim=1)


def small_config(spatial_dims: int = 3, classes: int = 1) -> SegmenterConfig:
    class_map = {f"organ{n}": n for n in range(1, classes + 1)}
    return SegmenterConfig(
        spatial_dims=spatial_dims,  # type: ignore[arg-type]
        class_map=class_map,
        channels=(4, 8),
        strides=(2,),
        num_res_units=0,
    )


@pytest.fixture(scope="module")
def phantom_image() -> tuple[MetaTensor, np.ndarray]:
    phantom = make_phantom(shape=(48, 40, 12), noise_hu=0.0)
    affine = torch.from_numpy(phantom.to_ras_affine())
    return MetaTensor(torch.from_numpy(phantom.hu), affine=affine), phantom.hu


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels whose 3x3x3 neighbourhood holds both labels (dilation minus erosion)."""
    x = torch.from_numpy(mask.astype(np.float32))[None, None]
    dilated = F.max_pool3d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool3d(-x, 3, stride=1, padding=1)
    return (dilated != eroded)[0, 0].numpy()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_untrained_unet_labels_on_input_grid(phantom_image, spatial_dims):
    image, _ = phantom_image
    config = small_config(spatial_dims, classes=3)
    torch.manual_seed(0)
    model = build_segmenter(config)
    model.train()
    labels = segment_volume(
        image, model, config=config, target_spacing=(2.0, 1.75, 4.0), roi_size=(32, 32, 8)
    )
    assert isinstance(labels, MetaTensor)
    assert labels.shape == image.shape
    assert labels.dtype == torch.uint8
    assert torch.equal(labels.affine, image.affine)
    assert int(labels.min()) >= 0 and int(labels.max()) <= config.out_channels - 1
    assert model.training  # mode restored
    record = labels.meta["segmentation"]
    assert record["target_spacing"] == [2.0, 1.75, 4.0]
    assert record["spatial_dims"] == spatial_dims


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_threshold_model_finds_bone_through_resampling(phantom_image, spatial_dims):
    image, hu = phantom_image
    bone = hu > BONE_HU
    config = small_config(spatial_dims)
    settings = {"config": config, "hu_window": HU_WINDOW, "roi_size": (32, 32, 8)}
    # A grid whose points include the input's: resampled there and back exactly.
    nested = segment_volume(
        image, Threshold(THRESHOLD), target_spacing=(0.75, 0.75, 1.5), **settings
    )
    assert torch.equal(nested.affine, image.affine)
    assert dice(nested.numpy().astype(bool), bone) >= 0.95
    # An unrelated grid: wrong labels only where the bone meets its surroundings.
    other = segment_volume(image, Threshold(THRESHOLD), target_spacing=(1.2, 1.1, 2.5), **settings)
    assert other.shape == image.shape
    assert torch.equal(other.affine, image.affine)
    wrong = other.numpy().astype(bool) != bone
    assert wrong.any()  # the resampling did happen
    assert not (wrong & ~boundary(bone)).any()


def test_no_target_spacing_runs_on_input_grid(phantom_image):
    image, hu = phantom_image
    labels = segment_volume(
        image,
        Threshold(THRESHOLD),
        config=small_config(),
        target_spacing=None,
        hu_window=HU_WINDOW,
        roi_size=(16, 16, 8),
        mode="constant",
        overlap=0.5,
        sw_batch_size=3,
    )
    np.testing.assert_array_equal(labels.numpy(), (hu > BONE_HU).astype(np.uint8))
    assert torch.equal(labels.affine, image.affine)
    assert labels.meta["segmentation"]["target_spacing"] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"roi_size": (32, 32)}, r"roi_size must be three positive integers .* got \(32, 32\)"),
        ({"roi_size": (32, 0, 8)}, r"roi_size must be three positive integers"),
        ({"roi_size": (32, 31, 8)}, r"multiples of the segmenter's size_divisor \(2\)"),
        ({"overlap": 1.0}, r"overlap must be >= 0 and < 1, got 1.0"),
        ({"overlap": -0.1}, r"overlap must be >= 0 and < 1, got -0.1"),
        ({"mode": "linear"}, r"mode must be one of constant, gaussian; got 'linear'"),
        ({"sw_batch_size": 0}, r"sw_batch_size must be a positive integer, got 0"),
        ({"target_spacing": (1.0, -1.0, 2.0)}, r"target_spacing must be None or three"),
        ({"hu_window": (300.0, -200.0)}, r"hu_window must be .* low < high"),
        ({"sw_device": "gpu9"}, r"sw_device must be a torch device"),
    ],
)
def test_bad_arguments_raise(phantom_image, kwargs, match):
    image, _ = phantom_image
    settings = {"config": small_config(), "roi_size": (32, 32, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        segment_volume(image, Threshold(0.5), **settings)


def test_bad_inputs_raise(phantom_image):
    image, hu = phantom_image
    config = small_config()
    with pytest.raises(TypeError, match=r"image must be a monai\.data\.MetaTensor, got Tensor"):
        segment_volume(torch.from_numpy(hu), Threshold(0.5), config=config)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"image must be 3-D \(i, j, k\), got shape"):
        segment_volume(image[None], Threshold(0.5), config=config)
    with pytest.raises(ValueError, match="roi_size must be two or three positive integers"):
        segment_volume(image, Threshold(0.5), config=small_config(2), roi_size=(32,))
    three = small_config(classes=2)
    with pytest.raises(ValueError, match=r"model must return config\.out_channels = 3 channels"):
        segment_volume(image, Threshold(0.5), config=three, roi_size=(32, 32, 8))


class LeftHalf(nn.Module):
    """Label 1 in the first half of the image width (columns ``i``), whatever the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        left = (torch.arange(width) < width // 2).to(x.dtype).expand_as(x)
        return torch.cat([1 - left, left], dim=1)


def test_axcodes_reorient_the_network_input_and_map_labels_back():
    """A volume stored RAS is shown to the network as LPS, like one stored LPS."""
    size = (32, 24, 3)
    lps = MetaTensor(
        torch.zeros(size), affine=torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]).double())
    )
    flip = torch.tensor([[-1.0, 0, 0, 31], [0, -1.0, 0, 23], [0, 0, 1, 0], [0, 0, 0, 1]])
    ras = MetaTensor(torch.zeros(size), affine=lps.affine @ flip.double())  # same place
    settings = {"config": small_config(2), "target_spacing": None, "roi_size": (32, 24)}
    from_lps = segment_volume(lps, LeftHalf(), **settings).numpy()
    from_ras = segment_volume(ras, LeftHalf(), **settings).numpy()
    assert from_lps[:16].all() and not from_lps[16:].any()
    np.testing.assert_array_equal(from_ras, from_lps[::-1, ::-1])  # the same voxels in space
    kept = segment_volume(ras, LeftHalf(), axcodes=None, **settings).numpy()
    np.testing.assert_array_equal(kept, from_lps)  # stored order, not anatomy
    with pytest.raises(ValueError, match="axcodes must be three letters"):
        segment_volume(lps, LeftHalf(), axcodes="LPL", **settings)


def test_spacing_none_entry_keeps_that_axis(phantom_image):
    image, hu = phantom_image
    labels = segment_volume(
        image,
        Threshold(THRESHOLD),
        config=small_config(2),
        target_spacing=(0.75, 0.75, None),  # in-plane grid nested in the input's
        hu_window=HU_WINDOW,
        roi_size=(32, 32),
    )
    assert labels.meta["segmentation"]["target_spacing"] == [0.75, 0.75, None]
    assert dice(labels.numpy().astype(bool), hu > BONE_HU) >= 0.95


@pytest.mark.parametrize("permute", [False, True])
def test_axis_by_axis_resampling_equals_monai_spatial_resample(permute):
    """The label map goes back to the input grid as MONAI's nearest SpatialResample would.

    The grids are chosen with no target voxel exactly half-way between two source voxels,
    where the two may round differently.
    """
    from monai.transforms import SpatialResample

    from ctpipe.segment import _labels_on_grid

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 8, (23, 19, 7), generator=generator, dtype=torch.uint8)
    source = torch.tensor(
        [[-3.0, 0, 0, 40.3], [0, 2.9, 0, -31.7], [0, 0, 2.5, 11.2], [0, 0, 0, 1]],
        dtype=torch.float64,
    )
    target = torch.tensor(
        [[-0.71, 0, 0, 41.0], [0, 0.83, 0, -32.0], [0, 0, 1.1, 10.0], [0, 0, 0, 1]],
        dtype=torch.float64,
    )
    shape = (90, 70, 16)
    if permute:  # a volume stored with its first two axes swapped
        target = target[:, [1, 0, 2, 3]]
        shape = (70, 90, 16)
    ours = _labels_on_grid(labels, source, target, shape)
    reference = SpatialResample(mode="nearest", padding_mode="border")(
        MetaTensor(labels.float()[None], affine=source), dst_affine=target, spatial_size=shape
    )
    assert ours.shape == shape
    np.testing.assert_array_equal(ours.numpy(), reference.as_tensor()[0].round().numpy())
