"""The default processor runs a real workflow file (ctpipe.workflow.run_study) in the node."""

from __future__ import annotations

import pydicom
import pytest

from ctpipe.errors import InputError
from ctpipe.pacs.processor import ProcessingError, WorkflowProcessor
from tests.conftest import REPO
from tests.pacs.conftest import free_port, node_config, running_node, send_files, wait_finished

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
