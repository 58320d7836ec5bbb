"""``benchmarks/guard_summary.py`` pools the guard's benchmark reports correctly."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

HEADER = {
    "weights": "vae.pt",
    "weights_sha256": "ab" * 32,
    "statistics": ["log_rec_coarse", "log_noise_hu"],
    "study_threshold": 3.0,
}


@pytest.fixture(scope="module")
def gs():
    spec = importlib.util.spec_from_file_location("guard_summary", _BENCH / "guard_summary.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["guard_summary"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("guard_summary", None)


def _row(name, kind, scores, threshold=3.0, tuned=False):
    study = float(np.median(scores))
    return {
        "name": name,
        "kind": kind,
        "scores": {"guard (shipped)": scores, "negative ELBO (z)": [0.0] * len(scores)}
        if tuned
        else scores,
        "study_score": study,
        "flagged": study > threshold,
    }


IDS = [("L192 D45", "ID", [1.0, 2.5, 2.0]), ("dcmqi (left out)", "ID", [1.5, 2.9])]


def _write(path, family, rows, tuned=False, **header):
    ids = [_row(*r, tuned=tuned) for r in IDS]
    data = {
        **HEADER,
        **header,
        "family": family,
        "studies": ids + [_row(*r, tuned=tuned) for r in rows],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def reports(tmp_path):
    tuned = _write(
        tmp_path / "tuned.json",
        "tuned",
        [("a", "head/neck", [5.0, 6.0]), ("b", "metal", [2.0, 4.0, 3.5])],
        tuned=True,
    )
    fresh = _write(
        tmp_path / "fresh.json",
        "fresh",
        [
            ("c", "motion doubling", [2.1, 2.2]),
            ("d", "wrong slope", [9.0]),
            ("e", "normal: 10 HU noise", [2.0, 3.2]),
        ],
    )
    return tuned, fresh


def _expected(positive_scores, positive_studies):
    neg = [1.0, 2.5, 2.0, 1.5, 2.9]
    slice_auc = roc_auc_score([0] * len(neg) + [1] * len(positive_scores), neg + positive_scores)
    neg_studies = [2.0, 2.2]
    study_auc = roc_auc_score([0] * 2 + [1] * len(positive_studies), neg_studies + positive_studies)
    return slice_auc, study_auc


def test_pools_every_family_against_scikit_learn(gs, reports, tmp_path):
    out = tmp_path / "summary.json"
    assert gs.main([str(p) for p in reports] + ["--json", str(out)]) == 0
    result = json.loads(out.read_text())
    pooled = result["all_families"]
    slice_auc, study_auc = _expected(
        [5.0, 6.0, 2.0, 4.0, 3.5, 2.1, 2.2, 9.0], [5.5, 3.5, 2.15, 9.0]
    )
    assert pooled["slice_auroc"] == pytest.approx(slice_auc)
    assert pooled["study_auroc"] == pytest.approx(study_auc)
    assert (pooled["studies"], pooled["slices"], pooled["flagged"]) == (4, 8, 3)
    both = result["all_families_vs_normal_variants_too"]  # a normal variant is a negative
    expected = roc_auc_score([0, 0, 0, 1, 1, 1, 1], [2.0, 2.2, 2.6, 5.5, 3.5, 2.15, 9.0])
    assert both["study_auroc"] == pytest.approx(expected)
    fresh = result["families"]["fresh"]  # the normal variant is not an OOD study
    assert fresh["study_auroc"] == pytest.approx(_expected([2.1, 2.2, 9.0], [2.15, 9.0])[1])
    assert result["weights_sha256"] == HEADER["weights_sha256"]
    assert not out.with_name(".summary.json.partial").exists()


def test_the_issues_kinds_and_the_others(gs, reports, tmp_path):
    out = tmp_path / "summary.json"
    gs.main([str(p) for p in reports] + ["--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["issue_kinds"]) == {"head and neck", "metal streaks", "wrong HU scaling"}
    named = result["issue_kinds_pooled"]
    assert named["slice_auroc"] == pytest.approx(
        _expected([5.0, 6.0, 2.0, 4.0, 3.5, 9.0], [5.5, 3.5, 9.0])[0]
    )
    other = result["other_kinds_pooled"]  # motion doubling alone
    assert (other["studies"], other["study_auroc"]) == (1, pytest.approx(0.5))
    assert result["kinds"]["fresh: motion doubling"]["flagged"] == 0
    variant = result["normal_variants"]["fresh: normal: 10 HU noise"]
    assert variant == {"studies": 1, "flagged": 0, "highest": pytest.approx(2.6)}


def test_prints_a_table_per_family_and_kind(gs, reports, capsys):
    gs.main([str(p) for p in reports])
    printed = capsys.readouterr().out
    assert "| family: tuned | 2 | 5 | 2 |" in printed
    assert "| **all families pooled** | 4 | 8 | 3 |" in printed
    # The catalogue ranks the kinds by the share flagged: all first, none last.
    kinds = re.findall(r"^\| (tuned|fresh): ([^|]+?) \|", printed, re.M)
    assert kinds[0] in {("tuned", "head/neck"), ("fresh", "wrong slope")}
    assert kinds[-1] == ("fresh", "normal: 10 HU noise")
    assert kinds[-2] == ("fresh", "motion doubling")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights_sha256": "cd" * 32}, "weights_sha256 differs"),
        ({"study_threshold": 3.5}, "study_threshold differs"),
        ({"family": "tuned"}, "family tuned again"),
    ],
)
def test_refuses_reports_of_another_guard_or_a_repeated_family(gs, reports, change, message):
    tuned, fresh = reports
    data = json.loads(fresh.read_text())
    fresh.write_text(json.dumps({**data, **change}))
    with pytest.raises(SystemExit, match=message) as error:
        gs.main([str(tuned), str(fresh)])
    assert str(fresh) in str(error.value)


def test_refuses_in_distribution_studies_that_differ(gs, reports):
    tuned, fresh = reports
    data = json.loads(fresh.read_text())
    data["studies"][0]["study_score"] += 0.1
    fresh.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="in-distribution studies differ"):
        gs.main([str(tuned), str(fresh)])


def test_refuses_a_report_without_the_guards_header(gs, tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"studies": []}))
    with pytest.raises(SystemExit, match=r"old\.json: no family, weights_sha256"):
        gs.main([str(old)])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SystemExit, match=r"broken\.json: not a readable JSON report"):
        gs.main([str(broken)])


def test_the_issues_kinds_are_kinds_the_benchmark_builds(gs):
    """A misspelt kind would silently drop out of the issue's figures."""
    source = "".join(
        (_BENCH / name).read_text(encoding="utf-8")
        for name in ("bench_ood_guard.py", "ood_families.py")
    )
    built = set(re.findall(r'\(\s*"([^"]+)",', source)) | set(
        re.findall(r'yield "([^"]+)"', source)
    )
    for kinds in gs.ISSUE_KINDS.values():
        assert set(kinds) <= built, set(kinds) - built


def test_every_normal_variant_of_the_benchmark_has_the_prefix(gs):
    sys.path[:0] = [str(_BENCH)]
    try:
        import bench_ood_guard
        import ood_families
    finally:
        sys.path.remove(str(_BENCH))
    assert bench_ood_guard.FAMILIES is ood_families.FAMILIES
    for family, (_, variants, _) in ood_families.FAMILIES.items():
        kinds = [kind for kind, _ in variants]
        assert kinds and all(k.startswith(gs.NORMAL_PREFIX) for k in kinds), family
    tables = [name for name in dir(ood_families) if name.endswith("_KINDS")]
    assert len(tables) == 5  # the sixth to tenth families
    for name in tables:
        kinds = [kind for kind, _ in getattr(ood_families, name)]
        assert not any(k.startswith(gs.NORMAL_PREFIX) for k in kinds), name
