"""`ctpipe vae ...`, `ctpipe train vae` and `ctpipe anomaly` end to end with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ctpipe.checkpoints.file import save_checkpoint
from ctpipe.checkpoints.vae import VAE_FORMAT
from ctpipe.cli import main
from ctpipe.io.nifti import read_nifti, write_nifti
from ctpipe.nets.vae import VAE
from ctpipe.phantom import make_phantom

GRID = {"size": [32, 32], "pixel_mm": 6.0, "window": [-160.0, 240.0]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    weights = save_checkpoint(
        folder / "vae.pt",
        vae,
        model_name="vae",
        config={"loss": {"sigma": 0.1}},
        extra={"grid": GRID},
        checkpoint_format=VAE_FORMAT,
    )
    phantom = make_phantom(shape=(96, 80, 5), spacing=(2.0, 2.0, 3.0))
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    affine[:3, 3] = (5.0, 6.0, 7.0)
    ct = write_nifti(phantom.hu, affine, folder / "ct.nii.gz")
    return weights, ct, phantom.hu, affine


def test_sample_writes_a_grid(files, tmp_path, capsys):
    weights, *_ = files
    out = tmp_path / "s.png"
    code = main(
        [
            "vae",
            "sample",
            "-n",
            "6",
            "--columns",
            "3",
            "--weights",
            str(weights),
            "-o",
            str(out),
            "--save-array",
        ]
    )
    assert code == 0 and "wrote" in capsys.readouterr().out
    assert Image.open(out).size == (3 * 32 + 2 * 2, 2 * 32 + 2)
    assert np.load(out.with_suffix(".npy")).shape == (6, 32, 32)


def test_interpolate_and_arithmetic(files, tmp_path):
    weights, ct, *_ = files
    out = tmp_path / "i.png"
    assert (
        main(
            [
                "vae",
                "interpolate",
                str(ct),
                str(ct),
                "--slices",
                "0",
                "4",
                "--steps",
                "4",
                "--weights",
                str(weights),
                "-o",
                str(out),
                "--save-array",
            ]
        )
        == 0
    )
    strip = np.load(out.with_suffix(".npy"))
    assert strip.shape == (6, 32, 32)  # A, 4 steps, B
    assert not np.array_equal(strip[0], strip[-1])
    out = tmp_path / "a.png"
    assert (
        main(
            [
                "vae",
                "arithmetic",
                str(ct),
                str(ct),
                str(ct),
                "--slices",
                "1",
                "2",
                "3",
                "--weights",
                str(weights),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (4 * 32 + 3 * 2, 32)


def test_anomaly_writes_map_overlay_and_scores(files, tmp_path, capsys):
    weights, ct, hu, affine = files
    out = tmp_path / "anomaly"
    code = main(
        [
            "anomaly",
            str(ct),
            "--output",
            str(out),
            "--weights",
            str(weights),
            "--samples",
            "2",
            "--top",
            "2",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "scored 5 slices" in printed and printed.count("negative ELBO") == 2
    array, back = read_nifti(out / "anomaly_map.nii.gz")
    assert array.shape == hu.shape and array.dtype == np.float32 and np.allclose(back, affine)
    record = json.loads((out / "anomaly_scores.json").read_text())
    assert len(record["slices"]) == 5 and record["settings"]["samples"] == 2
    assert record["input"] == str(ct)
    assert Image.open(out / "anomaly_overlay.png").size == (2 * 96 + 4, 80)
    assert sorted(p.name for p in out.iterdir()) == [
        "anomaly_map.nii.gz",
        "anomaly_overlay.png",
        "anomaly_scores.json",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["anomaly", "/no/such.nii.gz", "-o", "x"], "/no/such.nii.gz"),
        (["vae", "sample", "-o", "x.jpg"], "the output must be a .png file"),
        (
            ["vae", "interpolate", "CT", "CT", "--slices", "0", "99", "-o", "x.png"],
            "no slice 99: the volume has 5 slices",
        ),
        (["anomaly", "CT", "-o", "x", "--slice", "9"], "--slice 9 is outside its 5 slices"),
    ],
)
def test_bad_input_is_one_line_and_status_2(files, tmp_path, capsys, argv, message):
    weights, ct, *_ = files
    argv = [str(ct) if a == "CT" else a for a in argv]
    argv = [str(tmp_path / a) if a in ("x", "x.png", "x.jpg") else a for a in argv]
    assert main([*argv, "--weights", str(weights)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctpipe: error:") and message in err and "\n" not in err


def test_train_vae_is_a_train_task(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {train: []}\noutput_dir: o\n")
    assert main(["train", "vae", str(bad)]) == 2
    assert "data: train must list at least one source" in capsys.readouterr().err
