"""The study report: warnings (e.g. an incomplete series from the DICOM node) come first."""

from __future__ import annotations

from ctpipe.export.report import write_study_report

RECORD = {"status": "done", "workflow": {"name": "w"}, "input": {"path": "ct/"}, "timings": {}}


def test_warnings_head_the_report_escaped(tmp_path):
    record = {
        **RECORD,
        "warnings": ["series incomplete (4 instances received): <aborted>"],
        "reception": {"job_id": 7, "complete": False},
    }
    html = write_study_report(record, tmp_path / "report.html").read_text()
    warnings_at = html.index('<h2 class="failed">Warnings</h2>')
    assert warnings_at < html.index("<h2>Input</h2>") < html.index("Received by the DICOM node")
    assert "series incomplete (4 instances received): &lt;aborted&gt;" in html


def test_no_warnings_section_without_warnings(tmp_path):
    html = write_study_report({**RECORD, "warnings": []}, tmp_path / "report.html").read_text()
    assert "Warnings" not in html and "Received by the DICOM node" not in html
