"""Tests of ctpipe.export.preview.write_preview_png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctpipe.export.preview import PANEL_GAP, write_preview_png


def read_png(path: Path) -> tuple[np.ndarray, str]:
    with Image.open(path) as image:
        return np.asarray(image), image.mode


def test_window_maps_low_to_0_and_high_to_255(tmp_path: Path) -> None:
    ramp = np.arange(-360.0, 441.0)  # 801 HU steps of 1 along i
    hu = np.repeat(ramp[:, None, None], 3, axis=1).repeat(2, axis=2)
    pixels, mode = read_png(write_preview_png(hu, tmp_path / "ramp.png"))
    assert (mode, pixels.shape) == ("L", (3, 801))
    row = pixels[1].astype(int)
    at = {hu_value: row[int(hu_value + 360)] for hu_value in (-360, -161, -160, 40, 240, 241, 440)}
    assert at[-360] == at[-161] == at[-160] == 0
    assert at[240] == at[241] == at[440] == 255
    assert abs(at[40] - 127.5) <= 0.5
    assert np.all(np.diff(row) >= 0)


def test_custom_window(tmp_path: Path) -> None:
    hu = np.array([-1000.0, -500.0, 0.0])[:, None, None] * np.ones((3, 1, 1))
    pixels, _ = read_png(write_preview_png(hu, tmp_path / "w.png", window=(-1000.0, 0.0)))
    assert pixels[0].tolist() == [0, 128, 255]


def test_axial_shows_rows_j_and_columns_i(tmp_path: Path) -> None:
    hu = np.full((7, 5, 3), -1000.0)
    hu[6, 0, :] = 1000.0  # last column i, first row j
    pixels, _ = read_png(write_preview_png(hu, tmp_path / "t.png"))
    assert pixels.shape == (5, 7)
    assert pixels[0, 6] == 255 and pixels.sum() == 255


def test_slice_index_selects_k_and_defaults_to_middle(tmp_path: Path) -> None:
    hu = np.broadcast_to(np.array([-160.0, 40.0, 240.0, -160.0]), (4, 4, 4)).copy()
    assert read_png(write_preview_png(hu, tmp_path / "a.png"))[0][0, 0] == 255  # k = 2
    assert read_png(write_preview_png(hu, tmp_path / "b.png", slice_index=0))[0][0, 0] == 0
    assert read_png(write_preview_png(hu, tmp_path / "c.png", slice_index=-3))[0][0, 0] == 128


def test_spacing_keeps_aspect_ratio(tmp_path: Path) -> None:
    pixels, _ = read_png(
        write_preview_png(np.zeros((10, 6, 2)), tmp_path / "a.png", spacing=(2, 1, 1))
    )
    assert pixels.shape == (6, 20)


def test_all_axes_side_by_side(tmp_path: Path) -> None:
    hu = np.full((20, 10, 4), -1000.0)
    hu[:, :, 3] = 240.0  # top slice bright
    path = write_preview_png(hu, tmp_path / "all.png", axes="all", spacing=(1.0, 1.0, 2.5))
    pixels, mode = read_png(path)
    # axial 20 x 10, coronal 20 wide x 10 (4 * 2.5) high, sagittal 10 wide x 10 high
    assert (mode, pixels.shape) == ("L", (10, 20 + PANEL_GAP + 20 + PANEL_GAP + 10))
    coronal = pixels[:, 20 + PANEL_GAP : 40 + PANEL_GAP]
    bright_rows = np.flatnonzero(np.all(coronal == 255, axis=1))
    assert bright_rows.tolist() in ([0, 1], [0, 1, 2])  # last k on top, 2.5 rows tall
    assert np.all(coronal[3:] == 0)


def test_labels_are_blended_in_colour(tmp_path: Path) -> None:
    hu = np.zeros((8, 8, 3))
    labels = np.zeros((8, 8, 3), dtype=np.uint8)
    labels[2:4, 5:7, :] = 1
    pixels, mode = read_png(write_preview_png(hu, tmp_path / "l.png", labels=labels))
    assert (mode, pixels.shape) == ("RGB", (8, 8, 3))
    inside, outside = pixels[5, 2].astype(int), pixels[0, 0].astype(int)
    assert outside[0] == outside[1] == outside[2]
    assert inside[0] != inside[1]


def test_no_temporary_files_remain(tmp_path: Path) -> None:
    path = write_preview_png(np.zeros((4, 4, 2)), tmp_path / "sub" / "p.png")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["p.png"]
    assert path == tmp_path / "sub" / "p.png"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": (240.0, -160.0)}, r"low < high, got \(240.0, -160.0\)"),
        ({"window": (10.0, 10.0)}, "low < high"),
        ({"axes": "coronal"}, r"axes must be one of \('axial', 'all'\), got 'coronal'"),
        ({"slice_index": 5}, r"slice_index must be in 0\.\.3, got 5"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing must be 3 positive"),
        ({"labels": np.zeros((4, 4, 3), dtype=np.uint8)}, r"shape of hu \(4, 4, 4\)"),
        ({"labels": np.zeros((4, 4, 4))}, "labels must be integers"),
        ({"label_alpha": 0.0}, r"label_alpha must be in \(0, 1\]"),
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_preview_png(np.zeros((4, 4, 4)), tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()


def test_bad_volume_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"3D array .* got \(4, 4\)"):
        write_preview_png(np.zeros((4, 4)), tmp_path / "x.png")
