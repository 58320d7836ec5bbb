"""Organ statistics against a per-label reference loop; CSV; refusals."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ctpipe.organ_statistics import COLUMNS, organ_statistics, write_statistics_csv


def test_statistics_match_a_per_label_reference(rng):
    labels = rng.integers(0, 4, size=(20, 18, 7)).astype(np.uint8)
    hu = rng.normal(40, 30, size=labels.shape).astype(np.float32)
    affine = np.diag([0.8, 0.7, 2.5, 1.0])
    affine[:3, 3] = (10, -4, 3)
    class_map = {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 9}
    rows = organ_statistics(labels, hu, affine, class_map)
    assert [r.name for r in rows] == ["liver", "spleen", "kidney", "pancreas"]
    for row in rows[:3]:
        values = hu[labels == row.label].astype(np.float64)
        assert row.voxels == values.size
        assert row.volume_ml == pytest.approx(values.size * 0.8 * 0.7 * 2.5 / 1000)
        assert row.mean_hu == pytest.approx(values.mean())
        assert row.median_hu == pytest.approx(np.median(values))
        assert row.std_hu == pytest.approx(values.std())
    absent = rows[3]
    assert (absent.voxels, absent.volume_ml, absent.mean_hu, absent.std_hu) == (0, 0.0, None, None)


def test_csv_has_one_line_per_class(tmp_path, rng):
    labels = np.zeros((6, 6, 2), np.uint8)
    labels[:3] = 2
    hu = np.full(labels.shape, 55.0, np.float32)
    rows = organ_statistics(labels, hu, np.eye(4), {"liver": 1, "spleen": 2})
    path = write_statistics_csv(rows, tmp_path / "statistics.csv")
    with open(path, newline="") as stream:
        table = list(csv.DictReader(stream))
    assert tuple(table[0]) == COLUMNS
    assert table[0] == {
        "label": "1",
        "name": "liver",
        "voxels": "0",
        "volume_ml": "0.0",
        "mean_hu": "",
        "median_hu": "",
        "std_hu": "",
    }
    assert (table[1]["voxels"], table[1]["mean_hu"], table[1]["std_hu"]) == ("36", "55.0", "0.0")
    assert [p.name for p in tmp_path.iterdir()] == ["statistics.csv"]


@pytest.mark.parametrize(
    ("labels", "hu", "class_map", "message"),
    [
        (np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3)), {"a": 1}, "one shape"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), {"a": 1}, "must be integers"),
        (np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 2)), {"a": 0}, "positive labels"),
    ],
)
def test_bad_inputs_are_refused(labels, hu, class_map, message):
    with pytest.raises(ValueError, match=message):
        organ_statistics(labels, hu, np.eye(4), class_map)
