"""``ctpipe segment``: labels on the input grid (NIfTI and DICOM in), clear bad-input errors."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from ctpipe.checkpoints.segmenter import save_segmenter
from ctpipe.cli import main
from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
from ctpipe.phantom import make_phantom, write_phantom

INFERENCE = {
    "hu_window": [-1000.0, 1000.0],
    "target_spacing": [5.0, 5.0, None],
    "axcodes": "LPS",
    "roi_size": [32, 32],
    "overlap": 0.25,
    "mode": "gaussian",
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    return write_phantom(folder, make_phantom(shape=(48, 40, 5), spacing=(3.5, 3.5, 5.0)))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    config = SegmenterConfig(spatial_dims=2, channels=(4, 8), strides=(2,), num_res_units=0)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    return save_segmenter(path, build_segmenter(config), config, inference=INFERENCE), config


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["segment", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("source", ["nifti", "dicom"])
def test_labels_have_the_input_geometry(tmp_path, capsys, phantom, weights, source):
    path, config = weights
    given = phantom.ct_nifti if source == "nifti" else phantom.dicom_folder
    output = tmp_path / "labels.nii.gz"
    code, out, err = run(capsys, given, "--weights", path, "--output", output)
    assert code == 0, err
    reference = nib.load(phantom.ct_nifti)
    labels = nib.load(output)
    assert labels.shape == reference.shape
    np.testing.assert_allclose(labels.affine, reference.affine, atol=1e-4)
    np.testing.assert_allclose(labels.header.get_sform(), reference.affine, atol=1e-4)
    values = np.asarray(labels.dataobj)
    assert values.dtype == np.uint8
    assert set(np.unique(values)) <= set(range(config.out_channels))
    assert labels.header.get_intent()[0] == "label"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]  # no temporary left
    lines = out.splitlines()
    assert lines[0] == f"labels: {output} (48, 40, 5)"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert list(rows) == list(config.class_names[1:])
    voxel_ml = 3.5 * 3.5 * 5.0 / 1000
    for name, (count, ml) in rows.items():
        assert int(count) == int((values == config.class_map[name]).sum())
        assert float(ml) == pytest.approx(int(count) * voxel_ml, abs=0.006)


def test_window_options_override_the_checkpoint(tmp_path, capsys, phantom, weights):
    path, _ = weights
    output = tmp_path / "labels.nii"
    code, _, err = run(
        capsys,
        phantom.ct_nifti,
        "--weights",
        path,
        "--output",
        output,
        "--roi-size",
        "16",
        "16",
        "--overlap",
        "0.5",
        "--blend",
        "constant",
        "--sw-batch-size",
        "3",
    )
    assert code == 0, err
    assert nib.load(output).shape == (48, 40, 5)
    code, _, err = run(
        capsys, phantom.ct_nifti, "--weights", path, "--output", output, "--roi-size", "15", "16"
    )
    assert code == 2
    assert "roi_size must be multiples of the segmenter's size_divisor (2)" in err


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda tmp, ph: tmp / "absent.nii.gz", "absent.nii.gz: no such file or folder"),
        (
            lambda tmp, ph: ph.labels_nifti,
            "phantom_labels.nii.gz: does not look like CT in Hounsfield units: values span "
            "0 .. 7 with nothing below -500 HU",
        ),
        (
            lambda tmp, ph: _text_file(tmp),
            "notes.txt: cannot be read as a CT volume (a DICOM series or NIfTI/NRRD)",
        ),
        (lambda tmp, ph: _mr_file(), "MR_small.dcm: modality MR is not allowed (allowed: CT)"),
    ],
    ids=["missing", "label-map", "text", "mr"],
)
def test_bad_inputs_fail_in_one_line(tmp_path, capsys, phantom, weights, make_input, message):
    path, _ = weights
    output = tmp_path / "out" / "labels.nii.gz"
    code, _, err = run(capsys, make_input(tmp_path, phantom), "--weights", path, "--output", output)
    assert code == 2
    assert err.startswith("ctpipe: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not output.exists()


def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    return path


def _mr_file():
    from pydicom.data import get_testdata_file

    return get_testdata_file("MR_small.dcm")


def test_bad_output_weights_and_device(tmp_path, capsys, phantom, weights):
    path, _ = weights
    code, _, err = run(capsys, phantom.ct_nifti, "--weights", path, "--output", tmp_path / "a.png")
    assert code == 2 and "a.png: the label map must be written as NIfTI" in err
    denoiser = tmp_path / "denoiser.pt"
    from ctpipe.checkpoints.file import save_checkpoint
    from ctpipe.nets import build_denoiser

    save_checkpoint(denoiser, build_denoiser("redcnn", filters=4), model_name="redcnn")
    code, _, err = run(capsys, phantom.ct_nifti, "--weights", denoiser, "--output", tmp_path / "b")
    assert code == 2 and "b: the label map must be written as NIfTI" in err
    out = tmp_path / "b.nii.gz"
    code, _, err = run(capsys, phantom.ct_nifti, "--weights", denoiser, "--output", out)
    assert code == 2
    assert "denoiser.pt: not a ctpipe segmenter checkpoint: format is 'ctpipe.denoiser'" in err
    if not torch.cuda.is_available():
        code, _, err = run(capsys, phantom.ct_nifti, "--output", out, "--sw-device", "cuda")
        assert code == 2 and "--sw-device cuda: CUDA is not available" in err


def test_train_segment_task_parses_and_reports_bad_configs(tmp_path, capsys):
    from ctpipe.cli import build_parser
    from ctpipe.cli.train import run_train_segment

    args = build_parser().parse_args(
        ["train", "segment", "c.yaml", "--resume", "r/checkpoint_latest.pt", "--output", "o"]
    )
    assert args.func is run_train_segment
    assert (args.config, args.resume, args.output) == ("c.yaml", "r/checkpoint_latest.pt", "o")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {}\ndata: {train: []}\noutput_dir: o\n")
    assert main(["train", "segment", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ctpipe: error: {bad}: data: datalist or train must be given: there would be no "
        "training data"
    )
