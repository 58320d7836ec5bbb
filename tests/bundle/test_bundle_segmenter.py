"""MONAI bundles in ``ctpipe segment``: MONAI's own result, exact geometry, clear refusals."""

from __future__ import annotations

import copy
import csv
import json
import logging
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from ctpipe.bundle import BundleError, BundleSegmenter, find_bundle
from ctpipe.cli import main
from ctpipe.io import load_ct
from tests.bundle.conftest import INFERENCE, METADATA, build_network, dice, write_bundle


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["segment", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def monai_run(bundle, image, output_dir, *, torchscript: bool = False) -> nib.Nifti1Image:
    """The bundle run by MONAI itself (``monai.bundle.run``) on one NIfTI file."""
    from monai.bundle import run

    overrides = {}
    if torchscript:  # the TorchScript module instead of network_def + CheckpointLoader
        overrides = {
            "network": "$torch.jit.load(@bundle_root + '/models/model.ts').to(@device)",
            "initialize": ["$monai.utils.set_determinism(seed=123)"],
        }
    logging.getLogger("monai.bundle").setLevel(logging.WARNING)
    run(
        config_file=str(bundle / "configs" / "inference.json"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        bundle_root=str(bundle),
        datalist=[str(image)],
        output_dir=str(output_dir),
        **overrides,
    )
    (written,) = list(output_dir.glob("*_seg.nii.gz"))
    return nib.load(written)


@pytest.mark.parametrize("model", ["model.pt", "model.ts"])
def test_ctpipe_equals_monai_running_the_bundle(tmp_path, capsys, bundle_dir, phantom_files, model):
    _, files = phantom_files
    output = tmp_path / "labels.nii.gz"
    code, out, err = run_cli(
        capsys, files.ct_nifti, "--bundle", bundle_dir, "--bundle-model", model, "--output", output
    )
    assert code == 0, err
    reference = monai_run(
        bundle_dir, files.ct_nifti, tmp_path / "monai", torchscript=model == "model.ts"
    )
    labels = nib.load(output)
    values = np.asarray(labels.dataobj)
    np.testing.assert_array_equal(values, np.asarray(reference.dataobj))
    np.testing.assert_allclose(labels.affine, nib.load(files.ct_nifti).affine, atol=1e-5)
    assert values.dtype == np.uint8 and set(np.unique(values)) == {0, 1, 2}
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert list(rows) == ["liver", "spleen"]
    assert int(rows["liver"][0]) == int((values == 1).sum())


def test_lps_dicom_and_ras_nifti_give_identical_labels(tmp_path, bundle_dir, phantom_files):
    phantom, files = phantom_files
    canonical = nib.as_closest_canonical(nib.load(files.ct_nifti))
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    ras_file = tmp_path / "phantom_ras.nii.gz"
    nib.save(canonical, ras_file)
    segmenter = BundleSegmenter(find_bundle(bundle_dir))
    from_dicom = segmenter(load_ct(files.dicom_folder))  # i to the left, j to posterior
    from_ras = segmenter(load_ct(ras_file))  # i to the right, j to anterior
    np.testing.assert_allclose(from_ras.affine.numpy(), canonical.affine, atol=1e-5)
    np.testing.assert_allclose(from_dicom.affine.numpy(), phantom.to_ras_affine(), atol=1e-5)
    np.testing.assert_array_equal(from_dicom.numpy(), from_ras.numpy()[::-1, ::-1, :])
    # and the labels lie on the organs, not on their mirror images
    labels = from_dicom.numpy()
    liver, spleen = phantom.mask("liver"), phantom.mask("spleen")
    assert dice(labels == 1, liver) > 0.8
    assert dice(labels == 2, spleen) > 0.5
    assert dice(labels == 1, liver[::-1]) < 0.5


def test_a_bundle_without_invertd_is_inverted_by_ctpipe(tmp_path, trained_weights, phantom_files):
    _, files = phantom_files
    # wholeBody_ct_segmentation's order: arg-max, then Invertd with nearest neighbour
    inverting = copy.deepcopy(INFERENCE)
    transforms = inverting["postprocessing"]["transforms"]
    transforms[1:3] = [transforms[2], {**transforms[1], "nearest_interp": True}]
    with_invert = write_bundle(tmp_path / "with", trained_weights, inference=inverting)
    plain = copy.deepcopy(INFERENCE)
    plain["postprocessing"]["transforms"] = [
        t for t in plain["postprocessing"]["transforms"] if t["_target_"] not in ("Invertd",)
    ]
    without = write_bundle(tmp_path / "without", trained_weights, inference=plain)
    labels = BundleSegmenter(find_bundle(without))(load_ct(files.ct_nifti))
    reference = monai_run(with_invert, files.ct_nifti, tmp_path / "monai")
    np.testing.assert_array_equal(labels.numpy(), np.asarray(reference.dataobj))


def test_statistics_csv_matches_the_labels_and_hu(tmp_path, capsys, bundle_dir, phantom_files):
    phantom, files = phantom_files
    output, table = tmp_path / "labels.nii.gz", tmp_path / "statistics.csv"
    code, out, err = run_cli(
        capsys,
        files.dicom_folder,
        "--bundle",
        bundle_dir,
        "--output",
        output,
        "--statistics",
        table,
    )
    assert code == 0, err
    assert f"statistics: {table}" in out
    labels = np.asarray(nib.load(output).dataobj)
    with open(table, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["name"] for r in rows] == ["liver", "spleen"]
    for row in rows:
        hu = phantom.hu[labels == int(row["label"])].astype(np.float64)
        assert int(row["voxels"]) == hu.size
        assert float(row["volume_ml"]) == pytest.approx(hu.size * 1.5 * 1.5 * 3.0 / 1000, abs=1e-3)
        assert float(row["mean_hu"]) == pytest.approx(hu.mean(), abs=1e-3)
        assert float(row["median_hu"]) == pytest.approx(np.median(hu), abs=1e-3)
        assert float(row["std_hu"]) == pytest.approx(hu.std(), abs=1e-3)


def test_devices_and_window_reach_the_bundle_inferer(bundle_dir):
    segmenter = BundleSegmenter(
        find_bundle(bundle_dir),
        device="cpu",
        sw_device="cpu",
        window={"sw_batch_size": 3, "overlap": 0.5, "roi_size": None},
    )
    inferer = segmenter.inferer
    assert (inferer.sw_device, inferer.device) == (torch.device("cpu"), torch.device("cpu"))
    assert (inferer.sw_batch_size, inferer.overlap, tuple(inferer.roi_size)) == (
        3,
        0.5,
        (32, 32, 8),
    )
    record = segmenter.record()
    assert record["amp"] is False  # mixed precision only on CUDA
    assert record["bundle"]["weights"] == "models/model.pt"
    assert record["class_names"] == ["background", "liver", "spleen"]
    assert record["preprocessing"][0] == "EnsureChannelFirstd"  # the file loader is gone
    assert "SaveImaged" not in record["postprocessing"]
    json.dumps(record)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_windows_with_amp_give_the_cpu_labels(bundle_dir, phantom_files):
    _, files = phantom_files
    image = load_ct(files.ct_nifti)
    on_cpu = BundleSegmenter(find_bundle(bundle_dir))(image)
    segmenter = BundleSegmenter(find_bundle(bundle_dir), device="cpu", sw_device="cuda")
    on_gpu = segmenter(image)
    assert segmenter.record()["amp"] is True
    assert on_gpu.device.type == "cpu"
    assert (on_gpu.numpy() == on_cpu.numpy()).mean() > 0.999


def _bad_metadata(**output):
    meta = copy.deepcopy(METADATA)
    meta["network_data_format"]["outputs"]["pred"].update(output)
    return meta


def _make(tmp_path, weights, **kwargs):
    return write_bundle(tmp_path / "bundle", weights, **kwargs)


def _without(tmp_path, weights, part):
    folder = _make(tmp_path, weights)
    target = folder / part
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    return folder


def _other_weights(tmp_path, weights):
    folder = _make(tmp_path, weights, models=("model.ts",))
    from monai.networks.nets import UNet

    other = UNet(3, 1, 3, channels=(4, 8), strides=(2,), num_res_units=0)
    torch.save(other.state_dict(), folder / "models" / "model.pt")
    return folder


def _broken_ts(tmp_path, weights):
    folder = _make(tmp_path, weights, models=())
    (folder / "models" / "model.ts").write_bytes(b"not a torchscript archive")
    return folder


def _config(**changes):
    config = copy.deepcopy(INFERENCE)
    for key, value in changes.items():
        config[key] = value
    return config


BAD_BUNDLES = {
    "name": (
        lambda tmp, w: "spleen_ct_segmentation",
        "python -m monai.bundle download --name spleen_ct_segmentation",
    ),
    "no-metadata": (
        lambda tmp, w: _without(tmp, w, "configs/metadata.json"),
        "configs/metadata.json is missing",
    ),
    "no-config": (lambda tmp, w: _without(tmp, w, "configs/inference.json"), "no inference config"),
    "no-weights": (
        lambda tmp, w: _without(tmp, w, "models"),
        "no weights: models/model.pt or models/model.ts",
    ),
    "classification": (
        lambda tmp, w: _make(tmp, w, metadata=_bad_metadata(format="classification")),
        "not a segmentation bundle",
    ),
    "unnamed-channel": (
        lambda tmp, w: _make(
            tmp, w, metadata=_bad_metadata(channel_def={"0": "background", "1": "liver"})
        ),
        "cannot map the labels to classes",
    ),
    "more-names": (
        lambda tmp, w: _make(
            tmp,
            w,
            metadata=_bad_metadata(
                num_channels=4,
                channel_def={"0": "background", "1": "liver", "2": "spleen", "3": "kidney"},
            ),
        ),
        "the network gives 3 channels but channel_def names 4",
    ),
    "other-network": (_other_weights, "does not fit the bundle's network_def"),
    "broken-ts": (_broken_ts, "cannot be loaded as TorchScript"),
    "no-argmax": (
        lambda tmp, w: _make(
            tmp,
            w,
            inference=_config(
                postprocessing={
                    "_target_": "Compose",
                    "transforms": [{"_target_": "Activationsd", "keys": "pred", "softmax": True}],
                }
            ),
        ),
        "postprocessing must give one label map",
    ),
    "bad-target": (
        lambda tmp, w: _make(
            tmp,
            w,
            inference=_config(
                preprocessing={
                    "_target_": "Compose",
                    "transforms": [{"_target_": "NoSuchTransformd", "keys": "image"}],
                }
            ),
        ),
        "cannot build preprocessing",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundles_fail_in_one_line(tmp_path, capsys, trained_weights, phantom_files, case):
    make, message = BAD_BUNDLES[case]
    _, files = phantom_files
    bundle = make(tmp_path, trained_weights)
    output = tmp_path / "out" / "labels.nii.gz"
    code, _, err = run_cli(capsys, files.ct_nifti, "--bundle", bundle, "--output", output)
    assert code == 2, err
    assert err.startswith("ctpipe: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not output.exists()


def test_find_bundle_names_a_missing_model_choice(tmp_path, trained_weights):
    folder = write_bundle(tmp_path / "b", trained_weights, models=("model.ts",))
    assert find_bundle(folder).is_torchscript
    with pytest.raises(BundleError, match=r"models/model.pt is missing \(found: model.ts\)"):
        find_bundle(folder, model="model.pt")


def test_bundle_and_weights_exclude_each_other(tmp_path, capsys, bundle_dir, phantom_files):
    _, files = phantom_files
    code, _, err = run_cli(
        capsys,
        files.ct_nifti,
        "--bundle",
        bundle_dir,
        "--weights",
        "x.pt",
        "--output",
        tmp_path / "l.nii.gz",
    )
    assert code == 2 and "--bundle and --weights exclude each other" in err


def test_network_is_built_from_the_bundle_config(bundle_dir, trained_weights):
    segmenter = BundleSegmenter(find_bundle(bundle_dir, model="model.pt"))
    reference = build_network()
    reference.load_state_dict(trained_weights)
    assert type(segmenter.network) is type(reference)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(segmenter.network.state_dict()[name], value)


def test_labels_off_the_input_grid_are_resampled_onto_it(bundle_dir):
    from monai.data import MetaTensor

    segmenter = BundleSegmenter(find_bundle(bundle_dir))
    coarse = np.random.default_rng(0).integers(0, 3, size=(8, 6, 4))
    coarse_affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    coarse_affine[:3, 3] = (10.0, 6.0, -4.0)
    pred = MetaTensor(
        torch.from_numpy(coarse)[None].float(), affine=torch.from_numpy(coarse_affine)
    )
    fine_affine = np.diag([-1.0, -1.0, 3.0, 1.0])
    fine_affine[:3, 3] = (10.5, 6.5, -4.0)
    image = MetaTensor(torch.zeros(16, 12, 4), affine=torch.from_numpy(fine_affine))
    labels = segmenter._on_grid(pred, image).numpy()
    # independent reference: each fine voxel centre read from the coarse voxel it falls in
    to_coarse = np.linalg.inv(coarse_affine) @ fine_affine
    index = np.indices((16, 12, 4)).reshape(3, -1)
    source = np.rint(to_coarse[:3, :3] @ index + to_coarse[:3, 3:]).astype(int)
    expected = coarse[source[0], source[1], source[2]].reshape(16, 12, 4)
    np.testing.assert_array_equal(labels, expected)


def test_outputs_never_replace_the_input(tmp_path, capsys, bundle_dir, phantom_files):
    _, files = phantom_files
    output = tmp_path / "labels.nii.gz"
    code, _, err = run_cli(
        capsys,
        files.dicom_folder,
        "--bundle",
        bundle_dir,
        "--output",
        output,
        "--statistics",
        files.dicom_folder / "statistics.csv",
    )
    assert code == 2 and "write the result somewhere else" in err
    assert not output.exists()
    code, _, err = run_cli(
        capsys,
        files.ct_nifti,
        "--bundle",
        bundle_dir,
        "--output",
        files.ct_nifti,
    )
    assert code == 2 and "write the result somewhere else" in err
    assert nib.load(files.ct_nifti).shape == (96, 96, 12)
