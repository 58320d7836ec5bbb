"""The default processor runs a real workflow file (ctpipe.workflow.run_study) in the node."""

from __future__ import annotations

import json

import pydicom
import pytest

from ctpipe.errors import InputError
from ctpipe.pacs.processor import ProcessingError, WorkflowProcessor
from tests.conftest import REPO
from tests.pacs.conftest import (
    associate,
    free_port,
    node_config,
    running_node,
    send_files,
    wait_finished,
)

pytestmark = pytest.mark.slow

DENOISE_ONLY = REPO / "workflows" / "denoise_only.yaml"


def test_a_bad_workflow_file_is_refused_when_the_processor_is_built(tmp_path):
    bad = tmp_path / "wf.yaml"
    bad.write_text("name: x\nsteps: [denoise]\nbogus: 1\n")
    with pytest.raises(InputError, match="bogus"):
        WorkflowProcessor(bad)


@pytest.mark.filterwarnings("ignore:skipped 1 non-DICOM file")
def test_a_failed_run_fails_the_job_with_the_reason(tmp_path):
    empty = tmp_path / "series"
    empty.mkdir()
    (empty / "notes.txt").write_text("no DICOM here")
    with pytest.raises(ProcessingError, match=r"denoise_only\.yaml failed"):
        WorkflowProcessor(DENOISE_ONLY)(empty, tmp_path / "out")


def test_the_node_runs_the_denoise_workflow_and_sends_the_derived_series(
    tmp_path, phantom_series, destination
):
    port = free_port()
    dest = {"kind": "dimse", "ae_title": destination.ae_title, "port": destination.port}
    config = node_config(tmp_path / "node", port, dest, processor=None, workflow=str(DENOISE_ONLY))
    processor = WorkflowProcessor(DENOISE_ONLY)
    with running_node(config, processor) as node:
        send_files(port, phantom_series)
        (job,) = wait_finished(node, 1, timeout=120)
    assert job.state == "done", job.error
    source = pydicom.dcmread(phantom_series[0], stop_before_pixels=True)
    received = destination.received
    assert len(received) == len(phantom_series)
    assert {str(ds.StudyInstanceUID) for ds in received} == {str(source.StudyInstanceUID)}
    assert {str(ds.PatientID) for ds in received} == {str(source.PatientID)}
    assert {str(ds.SeriesInstanceUID) for ds in received} != {str(source.SeriesInstanceUID)}
    assert all("DERIVED" in ds.ImageType for ds in received)


def test_an_incomplete_series_is_marked_in_the_run_record_report_and_results(
    tmp_path, phantom_series, destination
):
    port = free_port()
    dest = {"kind": "dimse", "ae_title": destination.ae_title, "port": destination.port}
    config = node_config(tmp_path / "node", port, dest, processor=None, workflow=str(DENOISE_ONLY))
    config["completion"]["interrupted_timeout_s"] = 0.5
    with running_node(config, WorkflowProcessor(DENOISE_ONLY)) as node:
        assoc = associate(port, phantom_series)
        for path in phantom_series[:4]:
            assert assoc.send_c_store(path).Status == 0
        assoc.abort()
        (job,) = wait_finished(node, 1, timeout=120)
        output = node.queue.output_folder(job.id)
    assert job.state == "done", job.error
    record = json.loads((output / "run.json").read_text())
    assert record["status"] == "done"
    assert record["reception"]["complete"] is False
    assert record["reception"]["instances"] == 4 and record["reception"]["job_id"] == job.id
    (warning,) = record["warnings"]
    assert warning.startswith("series incomplete (4 instances received): the association")
    report = (output / "report.html").read_text()
    assert "<h2" in report and "Warnings" in report and "series incomplete (4 instances" in report
    assert len(destination.received) == 4
    assert {str(ds.SeriesDescription) for ds in destination.received} == {
        "INCOMPLETE ctpipe denoised"
    }
