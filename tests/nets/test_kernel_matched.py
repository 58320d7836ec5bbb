"""Kernel-matched denoisers: kernel families, routing by ConvolutionKernel, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from ctpipe.checkpoints.denoiser import load_denoiser
from ctpipe.checkpoints.file import save_checkpoint, state_sha256
from ctpipe.checkpoints.kernel_matched import combine_kernel_matched
from ctpipe.evaluate.run import SlicePair, evaluate_denoisers
from ctpipe.inference import denoise_slice, denoise_volume, route_denoiser
from ctpipe.io.dicom_volume import CTVolume
from ctpipe.kernels import kernel_family
from ctpipe.nets import build_denoiser
from ctpipe.nets.kernel_matched import KernelMatchedDenoiser
from ctpipe.steps.base import LoadedModel, StudyState
from ctpipe.steps.denoise import DenoiseStep

SPEC = {"name": "redcnn", "kwargs": {"filters": 2}}


@pytest.mark.parametrize(
    ("kernel", "family"),
    [
        ("B30f", "smooth"),
        ("D45f", "sharp"),
        ("Br40d", "sharp"),  # Siemens: 40 and up is sharp
        ("B39f", "smooth"),
        ("I26f\\3", "smooth"),  # a second value after the backslash
        ("BONEPLUS", "sharp"),
        ("STANDARD", "smooth"),
        ("soft", "smooth"),
        ("YA", "sharp"),  # Philips
        ("C", "smooth"),
        ("FC13", "smooth"),  # Canon: not a known sharp name
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_kernel_family_of_vendor_names(kernel, family):
    assert kernel_family(kernel) == family


@pytest.fixture
def matched() -> KernelMatchedDenoiser:
    """Members with different weights, so the output shows which one ran."""
    model = KernelMatchedDenoiser({"sharp": SPEC, "smooth": SPEC}, fallback="sharp")
    torch.manual_seed(1)
    for parameter in model.networks["smooth"].parameters():
        parameter.data = torch.randn_like(parameter) * 0.3
    return model.eval()


def phantom(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(40.0, 30.0, (40, 36, 2))).astype(np.float32)


@pytest.mark.parametrize(
    ("kernel", "member"), [("B30f", "smooth"), ("D45f", "sharp"), (None, "sharp"), ("", "sharp")]
)
def test_denoise_volume_runs_the_member_of_the_kernel_family(matched, kernel, member):
    hu = phantom()
    expected = denoise_volume(hu, matched.networks[member])
    other = denoise_volume(hu, matched.networks["smooth" if member == "sharp" else "sharp"])
    assert not np.allclose(expected, other)  # the members really differ
    tagged = MetaTensor(torch.from_numpy(hu), meta={"ConvolutionKernel": kernel})
    out = denoise_volume(tagged, matched)
    np.testing.assert_array_equal(out.numpy(), expected)
    assert out.meta["denoising"]["kernel"] == {"ConvolutionKernel": kernel or "", "network": member}


def test_an_explicit_kernel_overrides_the_meta_and_numpy_input_works(matched):
    hu = phantom(1)
    meta = MetaTensor(torch.from_numpy(hu), meta={"ConvolutionKernel": "D45f"})
    np.testing.assert_array_equal(
        denoise_volume(meta, matched, kernel="B30f").numpy(),
        denoise_volume(hu, matched.networks["smooth"]),
    )
    np.testing.assert_array_equal(
        denoise_slice(hu[:, :, 0], matched, kernel="B30f"),
        denoise_slice(hu[:, :, 0], matched.networks["smooth"]),
    )


def test_a_family_without_a_network_falls_back():
    model = KernelMatchedDenoiser({"smooth": SPEC}, fallback="smooth")
    assert model.select("D45f")[0] == "smooth"
    assert route_denoiser(model, "D45f")[1] == {"ConvolutionKernel": "D45f", "network": "smooth"}


def test_forward_and_geometry_follow_the_members(matched):
    x = torch.rand(1, 1, 30, 30)
    torch.testing.assert_close(matched(x), matched.networks["sharp"](x))
    assert matched.receptive_radius == matched.networks["sharp"].receptive_radius == 20
    assert matched.min_size == 21


@pytest.mark.parametrize(
    ("networks", "fallback", "message"),
    [
        ({}, "sharp", "at least one"),
        ({"bone": SPEC}, "bone", "unknown kernel families"),
        ({"sharp": SPEC}, "smooth", "fallback must be one of"),
        ({"sharp": {"kwargs": {}}}, "sharp", "must give a denoiser 'name'"),
        ({"sharp": {"name": "kernel_matched"}}, "sharp", "cannot itself be kernel-matched"),
    ],
)
def test_bad_member_lists_are_refused(networks, fallback, message):
    with pytest.raises(ValueError, match=message):
        KernelMatchedDenoiser(networks, fallback=fallback)


def test_combined_checkpoint_round_trips_the_members(tmp_path):
    members = {}
    for seed, family in enumerate(("sharp", "smooth")):
        torch.manual_seed(seed)
        net = build_denoiser("redcnn", filters=3)
        members[family] = save_checkpoint(
            tmp_path / f"{family}.pt", net, model_name="redcnn", iteration=100 * (seed + 1)
        )
    out = combine_kernel_matched(members, fallback="sharp", path=tmp_path / "both.pt")
    model = load_denoiser(out)
    assert isinstance(model, KernelMatchedDenoiser) and not model.training
    record = model.checkpoint_record
    assert record["model"]["name"] == "kernel_matched"
    for family, file in members.items():
        member = load_denoiser(file)
        assert state_sha256(model.networks[family].state_dict()) == state_sha256(
            member.state_dict()
        )
        facts = record["members"][family]
        assert facts["file"] == file.name
        assert facts["network_sha256"] == member.checkpoint_record["network_sha256"]
    assert [record["members"][f]["iteration"] for f in ("sharp", "smooth")] == [100, 200]


def test_denoise_step_routes_by_the_series_kernel_and_records_it(matched):
    hu = phantom(2)
    volume = CTVolume(hu.copy(), np.eye(4), meta={"ConvolutionKernel": "B30f"})
    study = StudyState(volume)
    loaded = LoadedModel(matched, "kernel_matched", "0" * 64)
    record = DenoiseStep(device="cpu").run(study, loaded)
    assert record["kernel"] == {"ConvolutionKernel": "B30f", "network": "smooth"}
    np.testing.assert_array_equal(study.image, denoise_volume(hu, matched.networks["smooth"]))


def test_a_plain_model_leaves_no_kernel_record():
    study = StudyState(CTVolume(phantom(3), np.eye(4), meta={"ConvolutionKernel": "B30f"}))
    record = DenoiseStep(device="cpu").run(study, LoadedModel(torch.nn.Identity(), "id", "0" * 64))
    assert "kernel" not in record


def test_evaluation_gives_kernel_aware_methods_the_slice_kernel():
    seen = []

    def aware(hu_2d, kernel=None):
        seen.append(kernel)
        return hu_2d

    ref = np.zeros((24, 24), np.float32)
    pairs = [SlicePair(ref + 1, ref, name=k, meta={"kernel": k}) for k in ("B30", "D45")]
    result = evaluate_denoisers(pairs, {"aware": aware, "plain": np.zeros_like})
    assert seen == ["B30", "D45"]
    assert len(result.summary()) == 2
