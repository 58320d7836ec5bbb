"""Batches on a local Dask cluster of 2 worker processes: same records, resume, isolation."""

from __future__ import annotations

import json
import os

import pytest

from ctpipe.workflow import load_workflow, run_batch
from ctpipe.workflow.cluster import ClusterError, close, connect, parse_resources

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:skipped .* non-DICOM file")]


@pytest.fixture(scope="module")
def client():
    client = connect(workers=2)
    yield client
    close(client)


def _tree(root):
    from ctpipe.phantom import make_phantom, write_phantom

    for i, patient in enumerate(["DASK-A", "DASK-B", "DASK-C"]):
        phantom = make_phantom(shape=(32, 32, 3), spacing=(8.0, 8.0, 5.0), seed=i)
        files = write_phantom(root / patient, phantom, patient_id=patient)
        for extra in ("ct_nifti", "labels_nifti", "label_names_json"):
            getattr(files, extra).unlink()
    victim = sorted((root / "DASK-C" / "dicom").glob("*.dcm"))[1]
    victim.write_bytes(victim.read_bytes()[:-500])
    return root


def test_two_worker_processes_run_the_batch_like_the_local_runner(tmp_path, client, workflow_file):
    assert len(client.scheduler_info()["workers"]) == 2
    tree = _tree(tmp_path / "tree")
    workflow_path = workflow_file(steps=["denoise"])
    workflow = load_workflow(workflow_path)
    out = tmp_path / "out"
    result = run_batch(
        workflow, tree, out, progress=False, client=client, workflow_source=workflow_path
    )
    statuses = {row["name"].split("_S")[0]: row["status"] for row in result.rows}
    assert statuses == {"DASK-A": "done", "DASK-B": "done", "DASK-C": "failed"}
    assert result.exit_code == 1
    failed = next(r for r in result.rows if r["status"] == "failed")
    assert "pixel data" in failed["error"]
    for row in result.rows:
        record = json.loads((out / row["name"] / "run.json").read_text())
        assert record["status"] == row["status"]
    pids = {
        json.loads((out / r["name"] / "run.json").read_text())["machine"]["pid"]
        for r in result.rows
    }
    assert os.getpid() not in pids  # the series ran in the worker processes
    again = run_batch(
        workflow, tree, out, progress=False, client=client, workflow_source=workflow_path
    )
    assert sorted(r["status"] for r in again.rows) == ["failed", "skipped", "skipped"]
    local = run_batch(
        workflow, tree, tmp_path / "local", progress=False, workflow_source=workflow_path
    )
    assert sorted(r["status"] for r in local.rows) == sorted(r["status"] for r in result.rows)


def test_connect_needs_one_target():
    with pytest.raises(ClusterError, match="either a scheduler address or a number"):
        connect()
    with pytest.raises(ClusterError, match="either"):
        connect("tcp://127.0.0.1:1", 2)


def test_unreachable_scheduler_is_one_clear_error():
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler tcp://127\.0\.0\.1:9"):
        connect("tcp://127.0.0.1:9", timeout=2)


def test_parse_resources():
    assert parse_resources("GPU=1, MEM=2e9") == {"GPU": 1.0, "MEM": 2e9}
    with pytest.raises(ValueError, match="NAME=AMOUNT"):
        parse_resources("=1")
