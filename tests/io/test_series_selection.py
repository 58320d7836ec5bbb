"""Series selection rules on a generated study export (localizer, dose report, two
reconstructions, a second phase)."""

from __future__ import annotations

import pytest

from ctpipe.errors import AmbiguousSeriesError, InputError
from ctpipe.io.discovery import scan_dicom
from ctpipe.io.series_selection import SeriesSelection, pick_series
from ctpipe.workflow.config import Workflow, WorkflowError


@pytest.fixture
def scanned(study_folder):
    root, uids = study_folder
    role = {uid: name for name, uid in uids.items()}
    return scan_dicom(root).series, role


def _decide(rules: SeriesSelection, scanned) -> dict[str, tuple[bool, str]]:
    series, role = scanned
    return {role[c.series.key]: (c.selected, c.reason) for c in rules.decide(series)}


def test_defaults_leave_out_localizer_and_dose_report_with_reasons(scanned):
    decided = _decide(SeriesSelection(), scanned)
    assert len(decided) == 5
    selected = sorted(name for name, (chosen, _) in decided.items() if chosen)
    assert selected == ["arterial_3mm", "venous_1_5mm", "venous_3mm"]
    assert "holds LOCALIZER (skip_image_type)" in decided["localizer"][1]
    reason = decided["dose_report"][1]
    assert "SOP class Secondary Capture Image Storage is not one of CT Image Storage" in reason
    assert "holds DERIVED" in reason  # every failing rule is named, not only the first


def test_one_per_study_takes_the_thinnest_reconstruction(scanned):
    decided = _decide(SeriesSelection(per_study="one"), scanned)
    assert [n for n, (chosen, _) in decided.items() if chosen] == ["venous_1_5mm"]
    assert "chosen among 3 matching series" in decided["venous_1_5mm"][1]
    for other in ("venous_3mm", "arterial_3mm"):
        chosen, reason = decided[other]
        assert not chosen and "per_study 'one' chose series 3 'Abdomen 1.5 B70f venous'" in reason


def test_tie_break_by_series_number_among_equal_series(scanned):
    rules = SeriesSelection(slice_thickness_mm=(2.0, 5.0), per_study="one", prefer=("thickest",))
    decided = _decide(rules, scanned)
    assert decided["venous_3mm"][0]  # 3 mm ties with arterial: SeriesNumber 2 < 4
    assert (
        "SliceThickness 1.5 mm is outside slice_thickness_mm [2, 5]" in decided["venous_1_5mm"][1]
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (SeriesSelection(description="arterial"), ["arterial_3mm"]),
        (SeriesSelection(skip_description="ARTERIAL"), ["venous_1_5mm", "venous_3mm"]),
        (SeriesSelection(kernel="^B7"), ["venous_1_5mm"]),
        (SeriesSelection(min_slices=7), ["venous_1_5mm"]),
        (SeriesSelection(max_slices=6), ["arterial_3mm", "venous_3mm"]),
        (
            SeriesSelection(per_study="one", prefer=("fewest_slices", "highest_number")),
            ["arterial_3mm"],
        ),
        (SeriesSelection(body_part="chest"), []),
        (
            SeriesSelection(sop_class=("1.2.840.10008.5.1.4.1.1.7",), skip_image_type=()),
            ["dose_report"],
        ),
    ],
)
def test_each_rule(scanned, rules, expected):
    decided = _decide(rules, scanned)
    assert sorted(n for n, (chosen, _) in decided.items() if chosen) == expected


def test_a_failing_pattern_names_tag_value_and_rule(scanned):
    decided = _decide(SeriesSelection(kernel="^B7"), scanned)
    assert decided["venous_3mm"][1] == "ConvolutionKernel 'B30f' does not match kernel '^B7'"


def test_pick_series_for_one_study_run(scanned, study_folder):
    series, role = scanned
    chosen, choices = pick_series(series, SeriesSelection(per_study="one"), folder="study")
    assert role[chosen.key] == "venous_1_5mm" and len(choices) == 5
    with pytest.raises(AmbiguousSeriesError, match="3 series pass the workflow's select rules"):
        pick_series(series, SeriesSelection(), folder="study")
    with pytest.raises(InputError, match=r"none of its 5 series passes .*BodyPartExamined"):
        pick_series(series, SeriesSelection(body_part="head"), folder="study")
    single = [s for s in series if role[s.key] == "localizer"]
    assert pick_series(single, SeriesSelection(), folder="study")[0] is single[0]


@pytest.mark.parametrize(
    ("select", "message"),
    [
        ({"kernel": "B3[0-"}, r"select: kernel must be a regular expression, got 'B3\[0-'"),
        ({"sop_class": ["CTImageStorag"]}, "did you mean 'CTImageStorage'"),
        ({"slice_thickness_mm": [5, 1]}, r"0 <= min <= max, got \[5.0, 1.0\]"),
        ({"min_slices": 0}, "min_slices must be >= 1, got 0"),
        ({"min_slices": 5, "max_slices": 2}, "max_slices must be >= min_slices 5, got 2"),
        ({"prefer": ["thinest"]}, "did you mean 'thinnest'"),
        ({"prefer": ["thinnest", "thinnest"]}, "prefer must name each key once"),
        ({"per_study": "first"}, r"select.per_study must be one of all, one"),
        ({"modality": []}, "modality must name at least one modality"),
        ({"kernels": "B30"}, "unknown key 'select.kernels'.*did you mean 'kernel'"),
    ],
)
def test_bad_rules_are_refused_with_the_key(select, message):
    with pytest.raises(WorkflowError, match=message):
        Workflow.from_dict({"name": "w", "select": select}, source="wf.yaml")


def test_rules_do_not_change_the_settings_hash():
    assert (
        Workflow(name="w").sha256
        == Workflow.from_dict({"name": "w", "select": {"per_study": "one", "kernel": "B30"}}).sha256
    )
