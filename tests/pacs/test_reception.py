"""The markers of incomplete and revised results, in SeriesDescription."""

from __future__ import annotations

import pydicom
import pytest

from ctpipe.pacs.reception import Reception, mark_results, marked_description
from tests.pacs.conftest import write_phantom_series


def _reception(**kwargs) -> Reception:
    values = dict(job_id=3, series_uid="1.2.3", study_uid="1.2", calling_aet="CT", instances=5)
    return Reception(**{**values, **kwargs})


@pytest.mark.parametrize(
    "description, markers, expected",
    [
        ("ctpipe denoised", ["INCOMPLETE"], "INCOMPLETE ctpipe denoised"),
        ("", ["INCOMPLETE"], "INCOMPLETE"),
        ("INCOMPLETE ctpipe denoised", ["INCOMPLETE"], "INCOMPLETE ctpipe denoised"),
        ("ctpipe seg", ["INCOMPLETE", "REVISED"], "INCOMPLETE REVISED ctpipe seg"),
        ("x" * 64, ["REVISED"], "REVISED " + "x" * 56),
        ("ctpipe denoised", [], "ctpipe denoised"),
    ],
)
def test_marked_description(description, markers, expected):
    marked = marked_description(description, markers)
    assert marked == expected and len(marked) <= 64


def test_markers_and_warnings_follow_the_reception():
    assert _reception().markers == () and _reception().warnings() == []
    both = _reception(incomplete="aborted", supersedes=2, revised=True)
    assert both.markers == ("INCOMPLETE", "REVISED")
    assert both.warnings() == [
        "series incomplete (5 instances received): aborted",
        "revised result: instances of the series arrived after the results of job 2 were "
        "sent; the whole series was processed again",
    ]
    record = both.to_record()
    assert (record["complete"], record["markers"], record["job_id"]) == (
        False,
        ["INCOMPLETE", "REVISED"],
        3,
    )


def test_mark_results_rewrites_dicom_files_only(tmp_path):
    files = write_phantom_series(tmp_path / "s", slices=2, series_description="ctpipe test")
    other = tmp_path / "notes.txt"
    other.write_text("not DICOM")
    before = pydicom.dcmread(files[0])
    assert mark_results([*files, other], _reception()) == 0
    assert mark_results([*files, other], _reception(incomplete="aborted")) == 2
    assert mark_results(files, _reception(incomplete="aborted")) == 0  # already marked
    after = pydicom.dcmread(files[0])
    assert after.SeriesDescription == "INCOMPLETE ctpipe test"
    assert after.PixelData == before.PixelData and after.SOPInstanceUID == before.SOPInstanceUID
    assert other.read_text() == "not DICOM"
    assert sorted(p.name for p in files[0].parent.iterdir()) == sorted(p.name for p in files)
