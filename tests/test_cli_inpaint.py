"""``ctpipe inpaint``: outputs on the input's grid, the record, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ctpipe.checkpoints.gan import save_gan
from ctpipe.cli import main
from ctpipe.io.nifti import read_nifti, write_nifti
from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ctpipe.phantom import make_phantom

AFFINE = np.array([[-1.5, 0, 0, 30.0], [0, -1.5, 0, 20.0], [0, 0, 3.0, -40.0], [0, 0, 0, 1]])


@pytest.fixture
def inputs(tmp_path):
    torch.manual_seed(0)
    weights = save_gan(
        tmp_path / "tiny_gan.pt",
        DCGANGenerator(latent_size=8, features=4, image_size=16),
        DCGANDiscriminator(features=4, image_size=16),
        window=(-1024.0, 1024.0),
    )
    hu = np.round(make_phantom(shape=(64, 56, 3), seed=0).hu).astype(np.float32)
    ct = write_nifti(hu, AFFINE, tmp_path / "ct.nii.gz")
    pixels = np.zeros((56, 64), np.uint8)  # rows (j) x columns (i)
    pixels[15:19, 10:14] = 255
    Image.fromarray(pixels).save(tmp_path / "hole.png")
    return tmp_path, ct, weights, hu


def run(*argv):
    return main(["inpaint", *map(str, argv), "--margin", "3"])


def test_gan_inpainting_with_a_png_mask(inputs, capsys):
    folder, ct, weights, hu = inputs
    out = folder / "out" / "filled.nii.gz"
    code = run(
        ct,
        "--mask",
        folder / "hole.png",
        "-o",
        out,
        "--weights",
        weights,
        "--iterations",
        "5",
        "--mode",
        "independent",
    )
    assert code == 0, capsys.readouterr().err
    filled, affine = read_nifti(out)
    assert np.allclose(affine, AFFINE) and filled.shape == hu.shape
    mask = np.zeros(hu.shape, bool)
    mask[10:14, 15:19, :] = True  # the PNG's columns are i, its rows j
    assert np.array_equal(filled[~mask], hu[~mask])
    assert not np.allclose(filled[mask], hu[mask])
    record = json.loads((folder / "out" / "filled.json").read_text())
    assert record["method"] == "gan" and len(record["mask"]["sha256"]) == 64
    assert [s["k"] for s in record["slices"]] == [0, 1, 2]
    assert record["parameters"]["settings"]["mode"] == "independent"
    assert not (folder / "out" / "filled_mask.nii.gz").exists()
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["filled.json", "filled.nii.gz"]


def test_generated_mask_is_written_and_recorded(inputs):
    folder, ct, weights, hu = inputs
    out = folder / "gen.nii.gz"
    assert (
        run(
            ct,
            "--generate",
            "box",
            "--mask-seed",
            "2",
            "-o",
            out,
            "--weights",
            weights,
            "--iterations",
            "3",
        )
        == 0
    )
    mask, affine = read_nifti(folder / "gen_mask.nii.gz")
    assert mask.dtype == np.uint8 and mask.any() and np.allclose(affine, AFFINE)
    filled, _ = read_nifti(out)
    assert np.array_equal(filled[mask == 0], hu[mask == 0])
    record = json.loads((folder / "gen.json").read_text())
    assert record["mask"]["generated"]["kind"] == "box" and record["mask"]["generated"]["seed"] == 2


def test_classical_method(inputs):
    folder, ct, _, hu = inputs
    out = folder / "bh.nii.gz"
    assert run(ct, "--mask", folder / "hole.png", "-o", out, "--method", "biharmonic") == 0
    filled, _ = read_nifti(out)
    assert json.loads((folder / "bh.json").read_text())["method"] == "biharmonic"
    assert np.isfinite(filled).all() and not np.array_equal(filled, hu)


def test_bad_mask_gives_one_line_naming_the_file(inputs, capsys):
    folder, ct, weights, _ = inputs
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "small.png")
    code = run(ct, "--mask", folder / "small.png", "-o", folder / "x.nii.gz", "--weights", weights)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "small.png: 2D mask of 10 x 10 (i x j) does not fit the CT's slices of 64 x 56" in err
    assert not (folder / "x.nii.gz").exists() and not (folder / "x.json").exists()


def test_hole_too_large_and_bad_output_name(inputs, capsys):
    folder, ct, weights, _ = inputs
    pixels = np.zeros((56, 64), np.uint8)
    pixels[2:52, 4:54] = 255
    Image.fromarray(pixels).save(folder / "huge.png")
    assert (
        run(ct, "--mask", folder / "huge.png", "-o", folder / "y.nii.gz", "--weights", weights) == 2
    )
    assert "huge.png: a hole of 50 x 50 pixels" in capsys.readouterr().err
    assert run(ct, "--mask", folder / "hole.png", "-o", folder / "y.png") == 2
    assert "--output must end in .nii.gz or .nii" in capsys.readouterr().err


def test_bad_device_is_one_line(inputs, capsys):
    folder, ct, weights, _ = inputs
    assert (
        run(
            ct,
            "--mask",
            folder / "hole.png",
            "-o",
            folder / "d.nii.gz",
            "--weights",
            weights,
            "--device",
            "gpu",
        )
        == 2
    )
    assert "--device must be auto, cpu, cuda or cuda:N, got 'gpu'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--iterations", "0", "--iterations must be >= 1, got 0"),
        ("--follow-iterations", "0", "--follow-iterations must be >= 1, got 0"),
        ("--warmup", "-1", "--warmup must be >= 0, got -1"),
    ],
)
def test_bad_search_settings_are_one_line(inputs, capsys, flag, value, message):
    folder, ct, weights, _ = inputs
    out = folder / "s.nii.gz"
    code = run(ct, "--mask", folder / "hole.png", "-o", out, "--weights", weights, flag, value)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_follow_and_warmup_settings_are_recorded(inputs):
    folder, ct, weights, _ = inputs
    out = folder / "f.nii.gz"
    options = ("--iterations", "4", "--follow-iterations", "2", "--warmup", "3")
    assert run(ct, "--mask", folder / "hole.png", "-o", out, "--weights", weights, *options) == 0
    record = json.loads((folder / "f.json").read_text())
    settings = record["parameters"]["settings"]
    assert settings["search"]["warmup"] == 3 and settings["follow"]["iterations"] == 2
    # the hole is on every slice: a key slice searched in full, then 2-step follows
    assert [s["iterations"] for s in record["slices"]] == [4, 2, 2]
