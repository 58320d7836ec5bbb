"""Tests of ctpipe.evaluate (tables, figures) and the ``ctpipe evaluate denoise`` command."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from ctpipe.cli.evaluate import add_evaluate_parser, load_weight_methods
from ctpipe.evaluate import (
    BM3D,
    LDCT_INPUT,
    METRIC_COLUMNS,
    SlicePair,
    evaluate_denoisers,
    evaluate_ldct_baselines,
    identity,
    spread_indices,
    write_comparison_figure,
    write_evaluation,
)
from ctpipe.io.atomic import TEMP_PREFIX
from ctpipe.metrics import denoising_quality
from ctpipe.phantom import make_phantom

NOISE_HU = 30.0


def smooth(hu_2d: np.ndarray) -> np.ndarray:
    return gaussian_filter(hu_2d, 1.0)


@pytest.fixture(scope="module")
def pairs() -> list[SlicePair]:
    """Three smooth 32x32 soft-tissue slices (20 to 60 HU ramps), Gaussian noise added."""
    ramp = np.linspace(20.0, 60.0, 32)
    normal = np.stack([ramp[:, None] + ramp[None, :] * k / 10 for k in range(3)], axis=-1)
    rng = np.random.default_rng(3)
    low = normal + rng.normal(0.0, NOISE_HU, normal.shape)
    return [
        SlicePair(low[:, :, k], normal[:, :, k], name=f"P1 z{k}", meta={"patient": "P1", "z": k})
        for k in range(3)
    ]


@pytest.fixture(scope="module")
def result(pairs):
    return evaluate_denoisers(
        pairs, {LDCT_INPUT: identity, "smooth": smooth}, figure_slices=[0, -1]
    )


# --- evaluate_denoisers ---------------------------------------------------------------------


def test_identity_gives_the_input_metrics(pairs, result) -> None:
    rows = [r for r in result.per_slice if r["method"] == LDCT_INPUT]
    assert [r["slice"] for r in rows] == [0, 1, 2]
    for row, pair in zip(rows, pairs, strict=True):
        expected = denoising_quality(pair.low_hu, pair.normal_hu)
        assert {c: row[c] for c in METRIC_COLUMNS} == pytest.approx(expected)
    summary = result.summary()[0]
    assert summary["rmse_hu_full_mean"] == pytest.approx(NOISE_HU, rel=0.1)


def test_summary_table_structure(result) -> None:
    summary = result.summary()
    assert [row["method"] for row in summary] == [LDCT_INPUT, "smooth"]
    expected = {"method", "n_slices", "seconds_per_slice"}
    expected |= {f"{c}_{s}" for c in METRIC_COLUMNS for s in ("mean", "std")}
    assert set(summary[0]) == expected
    assert all(row["n_slices"] == 3 for row in summary)
    psnr = [r["psnr_full"] for r in result.per_slice if r["method"] == "smooth"]
    assert summary[1]["psnr_full_mean"] == pytest.approx(np.mean(psnr))
    assert summary[1]["psnr_full_std"] == pytest.approx(np.std(psnr))
    # smoothing white noise helps on both scales
    assert summary[1]["psnr_full_mean"] > summary[0]["psnr_full_mean"]
    assert summary[1]["psnr_window_mean"] > summary[0]["psnr_window_mean"]
    assert sorted(result.figure_outputs) == [0, 2]


def test_markdown_table(result) -> None:
    text = result.to_markdown()
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert "PSNR (dB) full" in header and "RMSE (HU) window" in header
    assert "RMSE (unit) full" in header
    rows = [line for line in text.splitlines() if line.startswith(f"| {LDCT_INPUT}")]
    assert len(rows) == 1 and rows[0].count("±") == len(METRIC_COLUMNS)


def test_method_errors_name_the_method(pairs) -> None:
    with pytest.raises(ValueError, match="method 'crop' returned shape"):
        evaluate_denoisers(pairs, {"crop": lambda hu: hu[1:]})
    with pytest.raises(ValueError, match="method 'nan' returned NaN"):
        evaluate_denoisers(pairs, {"nan": lambda hu: hu * np.nan})
    with pytest.raises(TypeError, match="method 'x' must be callable"):
        evaluate_denoisers(pairs, {"x": 3})
    with pytest.raises(ValueError, match="non-empty mapping"):
        evaluate_denoisers(pairs, {})
    with pytest.raises(ValueError, match="at least one SlicePair"):
        evaluate_denoisers([], {LDCT_INPUT: identity})
    with pytest.raises(ValueError, match=r"figure slice index .* \[0, 2\]"):
        evaluate_denoisers(pairs, {LDCT_INPUT: identity}, figure_slices=[3])


def test_slice_pair_is_validated() -> None:
    with pytest.raises(ValueError, match="2D of one shape"):
        SlicePair(np.zeros((8, 8)), np.zeros((8, 9)), name="a")
    with pytest.raises(ValueError, match="low_hu holds NaN"):
        SlicePair(np.full((8, 8), np.nan), np.zeros((8, 8)), name="a")


def test_spread_indices() -> None:
    assert spread_indices(21, 6) == [0, 4, 8, 12, 16, 20]
    assert spread_indices(2, 1) == [0]
    with pytest.raises(ValueError, match="at least 1"):
        spread_indices(3, 0)


# --- files ----------------------------------------------------------------------------------


def test_write_evaluation_writes_tables_and_figures(result, tmp_path: Path) -> None:
    paths = write_evaluation(result, tmp_path / "out")
    assert set(paths) == {"csv", "per_slice_csv", "markdown", "json", "figure:0", "figure:2"}
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == [LDCT_INPUT, "smooth"]
    assert float(rows[0]["psnr_full_mean"]) == pytest.approx(
        result.summary()[0]["psnr_full_mean"], rel=1e-5
    )
    with paths["per_slice_csv"].open() as handle:
        assert len(list(csv.DictReader(handle))) == 6
    data = json.loads(paths["json"].read_text())
    assert data["methods"] == [LDCT_INPUT, "smooth"]
    assert len(data["per_slice"]) == 6 and data["window_hu"] == [-160.0, 240.0]
    assert "numpy" in data["record"]["versions"]
    assert data["files"]["figure:0"].startswith("figures/")
    assert paths["markdown"].read_text() == result.to_markdown()
    for key in ("figure:0", "figure:2"):
        with Image.open(paths[key]) as image:
            assert image.format == "PNG" and image.size[0] > image.size[1] > 300
    assert paths["figure:0"].name == "slice_000_P1_z0.png"
    assert not list((tmp_path / "out").rglob(f"{TEMP_PREFIX}*"))


def test_json_keeps_infinite_psnr_as_text(pairs, tmp_path: Path) -> None:
    perfect = evaluate_denoisers(pairs[:1], {"oracle": lambda hu: pairs[0].normal_hu})
    data = json.loads(write_evaluation(perfect, tmp_path)["json"].read_text())
    assert data["per_slice"][0]["psnr_full"] == "inf"


def test_comparison_figure(pairs, tmp_path: Path) -> None:
    pair = pairs[0]
    path = write_comparison_figure(
        tmp_path / "f" / "one.png", pair, {LDCT_INPUT: pair.low_hu, "smooth": smooth(pair.low_hu)}
    )
    with Image.open(path) as image:
        assert image.format == "PNG"
    with pytest.raises(ValueError, match="diff_range_hu must be a positive"):
        write_comparison_figure(tmp_path / "x.png", pair, {}, diff_range_hu=0)
    with pytest.raises(ValueError, match="output of 'bad' has shape"):
        write_comparison_figure(tmp_path / "x.png", pair, {"bad": np.zeros((4, 4))})
    assert not (tmp_path / "x.png").exists()


# --- baselines protocol ---------------------------------------------------------------------


def test_baselines_with_fixed_bm3d_sigma(pairs) -> None:
    result = evaluate_ldct_baselines(
        pairs[:1], bm3d_sigma=NOISE_HU / 4096, extra_methods={"smooth": smooth}
    )
    assert result.methods == [LDCT_INPUT, BM3D, "smooth"]
    assert result.record["bm3d_sigma"] == pytest.approx(NOISE_HU / 4096)
    assert result.record["bm3d_sigma_chosen_on"] == "given"
    summary = {row["method"]: row for row in result.summary()}
    assert summary[BM3D]["psnr_full_mean"] > summary[LDCT_INPUT]["psnr_full_mean"]


def test_baselines_choose_sigma_on_training_pairs(pairs) -> None:
    result = evaluate_ldct_baselines(
        pairs[:1], train_pairs=pairs[1:2], bm3d_grid=(0.002, NOISE_HU / 4096), figure_slices=()
    )
    (search,) = result.tables.values()
    assert [row["sigma"] for row in search] == [0.002, NOISE_HU / 4096]
    assert result.record["bm3d_sigma"] == NOISE_HU / 4096
    assert result.record["train_slices_for_bm3d_sigma"] == 1
    assert "BM3D sigma search" in result.to_markdown()


def test_baselines_refuse_missing_training_and_name_clash(pairs) -> None:
    with pytest.raises(ValueError, match="needs training pairs"):
        evaluate_ldct_baselines(pairs)
    with pytest.raises(ValueError, match="clashes with a baseline"):
        evaluate_ldct_baselines(pairs, use_bm3d=False, extra_methods={LDCT_INPUT: smooth})
    result = evaluate_ldct_baselines(pairs[:1], use_bm3d=False, figure_slices=())
    assert result.methods == [LDCT_INPUT]


# --- command line ---------------------------------------------------------------------------


def run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="ctpipe")
    add_evaluate_parser(parser.add_subparsers())
    args = parser.parse_args([str(arg) for arg in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def aapm_tree(tmp_path_factory) -> Path:
    """An AAPM-layout tree of two patients, two 32x32 slices each (full and quarter dose)."""
    from ctpipe.export.dicom_series import write_ct_series

    root = tmp_path_factory.mktemp("aapm")
    normal = make_phantom(shape=(32, 32, 2), noise_hu=0.0)
    rng = np.random.default_rng(5)
    for patient in ("P1", "P2"):
        low = normal.hu + rng.normal(0.0, NOISE_HU, normal.hu.shape)
        for dose, hu in (("full", normal.hu), ("quarter", low)):
            write_ct_series(hu, normal.affine_lps, root / patient / f"{dose}_3mm_B30")
    return root


def test_cli_denoise_writes_results(aapm_tree: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    status = run(
        "evaluate", "denoise", "--data", aapm_tree, "--test-patients", "P2",
        "--train-slices", "1", "--bm3d-grid", "0.008", "--max-slices", "1",
        "--output", out,
    )  # fmt: skip
    assert status == 0
    captured = capsys.readouterr()
    assert "| BM3D |" in captured.out and "BM3D sigma 0.008" in captured.err
    data = json.loads((out / "metrics.json").read_text())
    assert data["methods"] == [LDCT_INPUT, BM3D]
    assert data["record"]["train_patients"] == "P1" and data["record"]["test_patients"] == "P2"
    assert data["record"]["test_slices"] == 1
    assert len(list((out / "figures").glob("*.png"))) == 1


def test_cli_denoise_without_bm3d_and_bad_input(aapm_tree: Path, tmp_path: Path, capsys):
    out = tmp_path / "eval"
    assert run("evaluate", "denoise", "--data", aapm_tree, "--test-patients", "P1", "P2",
               "--no-bm3d", "--output", out) == 0  # fmt: skip
    assert json.loads((out / "metrics.json").read_text())["summary"][0]["n_slices"] == 4
    assert run("evaluate", "denoise", "--data", aapm_tree, "--test-patients", "P9") == 2
    assert "error:" in capsys.readouterr().err
    assert run("evaluate", "denoise", "--data", aapm_tree) == 2
    assert "no test patients" in capsys.readouterr().err


def test_cli_refuses_bad_sigma(capsys) -> None:
    with pytest.raises(SystemExit):
        run("evaluate", "denoise", "--data", "x", "--bm3d-sigma", "40")
    assert "0 < sigma < 1" in capsys.readouterr().err


def test_weights_without_checkpoint_module_give_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ctpipe.checkpoints.denoiser", None)
    with pytest.raises(ImportError, match=r"--weights needs ctpipe\.checkpoints\.denoiser"):
        load_weight_methods([tmp_path / "model.pt"])
    assert run("evaluate", "denoise", "--data", "x", "--weights", tmp_path / "model.pt") == 2
    assert "load_denoiser" in capsys.readouterr().err


def test_weights_become_hu_methods(monkeypatch, tmp_path: Path) -> None:
    import torch

    class AddOneUnit(torch.nn.Module):  # adds 1/4096 in unit scale: +1 HU
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1.0 / 4096

    fake = types.ModuleType("ctpipe.checkpoints.denoiser")
    fake.load_denoiser = lambda path: (AddOneUnit(), {"path": str(path)})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ctpipe.checkpoints.denoiser", fake)
    methods = load_weight_methods([tmp_path / "a.pt", tmp_path / "b.pt"])
    assert list(methods) == ["AddOneUnit (a.pt)", "AddOneUnit (b.pt)"]
    hu = np.linspace(-1000, 1000, 64, dtype=np.float32).reshape(8, 8)
    assert methods["AddOneUnit (a.pt)"](hu) == pytest.approx(hu + 1.0, abs=1e-3)


def test_real_checkpoint_goes_through_the_pipeline_inferer(tmp_path: Path) -> None:
    import torch

    from ctpipe.checkpoints.file import save_checkpoint
    from ctpipe.inference import denoise_slice
    from ctpipe.nets import build_denoiser

    torch.manual_seed(0)
    model = build_denoiser("redcnn", filters=4).eval()
    path = save_checkpoint(tmp_path / "tiny.pt", model, model_name="redcnn")
    (method,) = load_weight_methods([path]).values()
    hu = np.linspace(-1000, 1000, 48 * 40, dtype=np.float32).reshape(48, 40)
    np.testing.assert_allclose(method(hu), denoise_slice(hu, model), atol=1e-3)
