"""SliceInferer, denoise_volume and denoise_slice: HU round trip, geometry, orientation,
batching, tiling, devices, AMP and every refused setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from torch.nn import functional as F

from ctpipe.inference import SliceInferer, denoise_slice, denoise_volume
from ctpipe.nets.base import Denoiser
from ctpipe.nets.redcnn import REDCNN
from ctpipe.nets.rednet import REDNet
from ctpipe.transforms import hu_to_unit, unit_to_hu
from tests.conftest import axial_affine, random_hu


class Scale(Denoiser):
    """Multiplies the unit image by a constant (identity for 1)."""

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__()
        self.factor = factor
        self.config = {"factor": factor}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class WidthGradient(Denoiser):
    """Forward difference along the image width (columns): x[..., w + 1] - x[..., w]."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[..., 1:] - x[..., :-1], (0, 1))


class ModeSpy(Denoiser):
    """Identity that records whether it ran in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {}
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return x


@pytest.fixture
def rednet() -> REDNet:
    torch.manual_seed(0)
    return REDNet(depth=6, filters=6)


@pytest.fixture
def hu(rng: np.random.Generator) -> np.ndarray:
    return random_hu(rng, shape=(37, 29, 5))  # i != j, odd sizes


# --- the HU -> unit -> HU path -------------------------------------------------------


def test_identity_gives_the_hu_back_exactly(hu: np.ndarray):
    out = denoise_volume(hu, Scale(1.0))
    assert out.dtype == np.float32 and out.shape == hu.shape
    np.testing.assert_array_equal(out, hu)


def test_identity_through_tiles_gives_the_hu_back(hu: np.ndarray):
    out = denoise_volume(hu, Scale(1.0), roi_size=(16, 16), overlap=0.5, margin=2)
    np.testing.assert_allclose(out, hu, atol=1e-3)  # blending divides: float rounding


def test_scaling_in_unit_space_gives_the_expected_hu(hu: np.ndarray):
    out = denoise_volume(hu, Scale(0.5), batch_size=2)
    np.testing.assert_array_equal(out, 0.5 * (hu + 1024) - 1024)


def test_input_is_left_unchanged(hu: np.ndarray):
    before = hu.copy()
    denoise_volume(hu, Scale(0.5))
    np.testing.assert_array_equal(hu, before)


# --- geometry and metadata -------------------------------------------------------------


def test_metatensor_keeps_affine_meta_and_gains_a_record(hu: np.ndarray, rednet: REDNet):
    affine = torch.as_tensor(axial_affine(rotation_deg=30.0))
    image = MetaTensor(torch.from_numpy(hu), affine=affine, meta={"filename_or_obj": "ct.nii"})
    image.applied_operations.append({"class": "Orientation"})
    out = denoise_volume(image, rednet, batch_size=2)
    assert isinstance(out, MetaTensor) and out.shape == image.shape and out.dtype == torch.float32
    torch.testing.assert_close(out.affine, image.affine)
    assert out.meta["filename_or_obj"] == "ct.nii"
    assert out.applied_operations == [{"class": "Orientation"}]
    record = out.meta["denoising"]
    assert record["model"] == "ctpipe.nets.rednet.REDNet"
    assert record["config"] == rednet.config
    assert record["inferer"]["margin"] == 6 and record["inferer"]["batch_size"] == 2
    assert record["inferer"]["sw_device"] == "cpu" and record["inferer"]["amp"] is False
    assert "denoising" not in image.meta
    out.meta["affine"][0, 0] = 99.0  # a copy, not a view
    assert image.affine[0, 0] != 99.0


def test_plain_tensor_in_tensor_out(hu: np.ndarray):
    out = denoise_volume(torch.from_numpy(hu), Scale(1.0))
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, torch.from_numpy(hu))


# --- orientation and slice independence -----------------------------------------------


def test_width_is_the_i_axis_and_height_the_j_axis(hu: np.ndarray):
    unit = hu_to_unit(hu)
    gradient_along_i = np.zeros_like(unit)
    gradient_along_i[:-1] = unit[1:] - unit[:-1]
    out = denoise_volume(hu, WidthGradient(), batch_size=3)
    np.testing.assert_allclose(out, unit_to_hu(gradient_along_i), atol=1e-3)


def test_a_ramp_along_i_gives_a_constant_gradient():
    ramp = np.broadcast_to(10.0 * np.arange(20, dtype=np.float32)[:, None, None], (20, 13, 2))
    out = denoise_volume(np.ascontiguousarray(ramp), WidthGradient())
    np.testing.assert_allclose(out[:-1], -1014.0, atol=1e-3)  # unit_to_hu(10 / 4096)
    np.testing.assert_allclose(out[-1], -1024.0, atol=1e-3)  # padded last column


@pytest.mark.parametrize("batch_size", [1, 3])
def test_slice_k_of_the_output_depends_only_on_slice_k(hu, rednet, batch_size: int):
    base = denoise_volume(hu, rednet, batch_size=batch_size)
    changed = hu.copy()
    changed[:, :, 2] = np.flip(changed[:, :, 2])
    out = denoise_volume(changed, rednet, batch_size=batch_size)
    assert np.abs(out[:, :, 2] - base[:, :, 2]).max() > 1.0
    others = [0, 1, 3, 4]
    np.testing.assert_allclose(out[:, :, others], base[:, :, others], atol=1e-3)


# --- batching and tiling --------------------------------------------------------------


def test_batch_size_does_not_change_the_result(hu: np.ndarray, rednet: REDNet):
    one = denoise_volume(hu, rednet, batch_size=1)
    for batch_size in (4, 5, 8):
        np.testing.assert_allclose(
            denoise_volume(hu, rednet, batch_size=batch_size), one, atol=1e-3
        )


@pytest.mark.parametrize(
    ("model_name", "roi_size", "overlap"),
    [("rednet", (20, 24), 0.65), ("redcnn", (56, 60), 0.75)],
)
def test_tiles_give_the_whole_slice_result(rng, model_name, roi_size, overlap):
    torch.manual_seed(0)
    model = REDNet(depth=6, filters=6) if model_name == "rednet" else REDCNN(filters=4)
    hu = random_hu(rng, shape=(83, 71, 2))
    whole = denoise_volume(hu, model)
    tiled = denoise_volume(hu, model, roi_size=roi_size, overlap=overlap, sw_batch_size=3)
    assert np.abs(whole - hu).max() > 10  # the network does something
    np.testing.assert_allclose(tiled, whole, atol=0.01)  # HU; float32 rounding only


def test_margin_changes_nothing_in_the_interior(rng, rednet: REDNet):
    hu = random_hu(rng, shape=(30, 26, 1))
    plain = denoise_volume(hu, rednet, margin=0)
    padded = denoise_volume(hu, rednet)  # margin = receptive_radius = 6
    radius = rednet.receptive_radius
    inner = (slice(radius, -radius), slice(radius, -radius))
    np.testing.assert_allclose(padded[inner], plain[inner], atol=1e-3)
    with torch.no_grad():
        direct = rednet(torch.from_numpy(hu_to_unit(hu[:, :, 0]).T)[None, None])[0, 0].T
    np.testing.assert_allclose(plain[:, :, 0], unit_to_hu(direct.numpy()), atol=1e-3)


def test_denoise_slice_matches_the_volume_path(hu: np.ndarray, rednet: REDNet):
    volume = denoise_volume(hu, rednet)
    out = denoise_slice(hu[:, :, 3], rednet, roi_size=(24, 24), overlap=0.75)
    assert out.shape == hu.shape[:2]
    np.testing.assert_allclose(out, volume[:, :, 3], atol=0.01)


def test_inferer_object_can_be_passed(hu: np.ndarray, rednet: REDNet):
    inferer = SliceInferer(batch_size=2, margin=0)
    out = denoise_volume(hu, rednet, inferer=inferer)
    np.testing.assert_allclose(out, denoise_volume(hu, rednet, margin=0), atol=1e-3)


def test_model_runs_in_eval_mode_and_is_restored(hu: np.ndarray):
    spy = ModeSpy().train()
    denoise_volume(hu, spy, batch_size=2)
    assert spy.seen == [False, False, False] and spy.training


def test_progress_bar_over_slice_batches(hu: np.ndarray, capsys):
    denoise_volume(hu, Scale(), batch_size=2, progress=True)
    assert "slice batches" in capsys.readouterr().err


def test_cpu_mixed_precision_is_close_to_float32(hu: np.ndarray, rednet: REDNet):
    full = denoise_volume(hu, rednet)
    mixed = denoise_volume(hu, rednet, amp=True, amp_dtype="bfloat16")
    assert mixed.dtype == np.float32
    assert np.abs(mixed - full).mean() < 10.0  # HU, random weights


def test_explicit_cpu_devices(hu: np.ndarray, rednet: REDNet):
    out = denoise_volume(hu, rednet, sw_device="cpu", device=torch.device("cpu"))
    np.testing.assert_allclose(out, denoise_volume(hu, rednet), atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_with_default_amp_matches_cpu(hu: np.ndarray, rednet: REDNet):
    cpu = denoise_volume(hu, rednet)
    image = MetaTensor(torch.from_numpy(hu), affine=torch.as_tensor(axial_affine()))
    gpu = denoise_volume(
        image, rednet, sw_device="cuda", device="cpu", roi_size=(24, 24), overlap=0.75
    )
    assert next(rednet.parameters()).is_cuda
    assert gpu.meta["denoising"]["inferer"]["amp"] is True
    assert gpu.device.type == "cpu"
    assert np.abs(gpu.numpy() - cpu).mean() < 10.0
    full = denoise_volume(hu, rednet, amp=False)  # model is on CUDA now
    np.testing.assert_allclose(full, cpu, atol=0.05)


# --- refused input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"roi_size": (16,)}, r"roi_size must be None or two positive integers"),
        ({"roi_size": (16, 0)}, r"roi_size must be None or two positive integers"),
        ({"overlap": 1.0}, r"overlap must be >= 0 and < 1, got 1.0"),
        ({"mode": "linear"}, r"mode must be one of constant, gaussian; got 'linear'"),
        ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
        ({"sw_batch_size": 1.5}, r"sw_batch_size must be a positive integer"),
        ({"margin": -1}, r"margin must be None or an integer >= 0, got -1"),
        ({"pad_mode": "circular"}, r"pad_mode must be one of reflect, replicate, constant"),
        ({"amp_dtype": "float8"}, r"amp_dtype must be one of bfloat16, float16"),
        ({"amp": "yes"}, r"amp must be True, False or None"),
        ({"sw_device": "gpu0"}, r"sw_device must be a torch device .* got 'gpu0'"),
        ({"roi_size": (32, 32), "margin": 10}, r"use overlap >= 0.625"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        SliceInferer(**kwargs)


def test_overlap_too_small_for_the_model_margin(rng):
    model = REDCNN(filters=2)  # margin 20
    with pytest.raises(
        ValueError, match=r"step 48 pixels, more than .* = 24; use overlap >= 0.625"
    ):
        denoise_volume(random_hu(rng, (90, 90, 1)), model, roi_size=(64, 64))


def test_reflect_padding_needs_slices_larger_than_the_margin(rng):
    small = random_hu(rng, (9, 8, 1))
    with pytest.raises(ValueError, match=r"pad_mode='reflect' needs slices larger than"):
        denoise_volume(small, Scale(), margin=8)
    out = denoise_volume(small, Scale(), margin=8, pad_mode="replicate")
    np.testing.assert_array_equal(out, small)


@pytest.mark.parametrize(
    ("function", "shape", "match"),
    [
        (denoise_volume, (4, 4), r"hu must be 3-D \(i, j, k\), got shape \(4, 4\)"),
        (denoise_slice, (4, 4, 1), r"hu must be 2-D \(i, j\), got shape \(4, 4, 1\)"),
        (denoise_volume, (4, 4, 0), r"at least one slice, got shape \(1, 4, 4, 0\)"),
    ],
)
def test_wrong_dimensions_are_refused(function, shape, match: str):
    with pytest.raises(ValueError, match=match):
        function(np.zeros(shape, dtype=np.float32), Scale())


def test_inferer_and_settings_together_are_refused(hu: np.ndarray):
    with pytest.raises(
        ValueError, match=r"either inferer or inferer settings, not both; .*batch_size"
    ):
        denoise_volume(hu, Scale(), inferer=SliceInferer(), batch_size=2)


def test_batch_must_be_four_dimensional():
    with pytest.raises(ValueError, match=r"images must be a \(batch, channel, height, width\)"):
        SliceInferer()(torch.zeros(1, 8, 8), Scale())


def test_channels_last_on_the_cpu_gives_the_contiguous_result():
    from ctpipe.nets import build_denoiser

    torch.manual_seed(0)
    model = build_denoiser("redcnn", filters=4)
    images = torch.rand(2, 1, 48, 40)
    auto = SliceInferer()
    assert auto.settings(model)["memory_format"] == "channels_last"  # auto, on the CPU
    plain = SliceInferer(memory_format="contiguous")
    a, b = auto(images, model), plain(images, model)
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="memory_format must be one of auto, channels_last"):
        SliceInferer(memory_format="nhwc")


# --- test-time self-ensemble ---------------------------------------------------------


def test_self_ensemble_is_the_mean_over_the_eight_flips_and_rotations(rng):
    torch.manual_seed(0)
    model = REDCNN(filters=4)
    image = rng.random((36, 28), dtype=np.float32)  # height != width: rotations change shape
    plain = SliceInferer(memory_format="contiguous")
    expected = np.zeros_like(image)
    for flip in (False, True):  # the reference: NumPy's transforms, one slice at a time
        flipped = np.fliplr(image) if flip else image
        for turns in range(4):
            turned = np.ascontiguousarray(np.rot90(flipped, turns))
            y = plain(torch.from_numpy(turned)[None, None], model)[0, 0].numpy()
            y = np.rot90(y, -turns)
            expected += np.fliplr(y) if flip else y
    expected /= 8
    ensemble = SliceInferer(memory_format="contiguous", self_ensemble=True)
    got = ensemble(torch.from_numpy(image)[None, None], model)[0, 0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, plain(torch.from_numpy(image)[None, None], model)[0, 0].numpy())
    assert ensemble.settings(model)["self_ensemble"] is True


def test_self_ensemble_leaves_a_symmetric_model_unchanged(hu: np.ndarray):
    blur = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False, padding_mode="reflect")
    with torch.no_grad():  # a kernel symmetric under flips and 90° rotations
        blur.weight.copy_(torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16)
    once = denoise_volume(hu, blur, margin=0)
    eight = denoise_volume(hu, blur, margin=0, self_ensemble=True)
    np.testing.assert_allclose(eight, once, atol=1e-3)  # HU: float32 rounding only


def test_self_ensemble_must_be_a_bool():
    with pytest.raises(ValueError, match="self_ensemble must be True or False, got 'yes'"):
        SliceInferer(self_ensemble="yes")
