"""Incomplete series and late instances: marked, merged, one result per series.

Every test runs a real node in-process with pynetdicom senders and a recording C-STORE
destination; the test processor writes a derived copy of the series plus a SEG, so a
series of n instances yields n + 1 result files.
"""

from __future__ import annotations

import pydicom
import pytest

from ctpipe.pacs.scp import SUCCESS
from tests.pacs.conftest import (
    CountingProcessor,
    associate,
    dimse_destination,
    free_port,
    node_config,
    running_node,
    send_files,
    wait_finished,
    wait_for,
    write_phantom_series,
)


def _descriptions(destination) -> list[str]:
    with destination.lock:
        return sorted(str(ds.get("SeriesDescription", "")) for ds in destination.received)


def _send_and_abort(port: int, files) -> None:
    assoc = associate(port, files)
    for path in files:
        assert assoc.send_c_store(path).Status == SUCCESS
    assoc.abort()


def test_an_aborted_series_is_processed_marked_incomplete(tmp_path, destination):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    config["completion"]["interrupted_timeout_s"] = 0.5
    with running_node(config, processor) as node:
        _send_and_abort(port, files[:4])
        (job,) = wait_finished(node, 1)
    assert job.state == "done" and processor.counts() == [4]
    assert job.incomplete.startswith("the association sending it was aborted")
    # every result says so in its SeriesDescription: the 4 derived slices, and the SEG
    # (whose processor gave it none)
    assert _descriptions(destination) == ["INCOMPLETE"] + ["INCOMPLETE ctpipe test derived"] * 4


def test_an_aborted_series_is_not_processed_with_incomplete_skip(tmp_path, destination):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    config["completion"].update(interrupted_timeout_s=0.5, incomplete="skip")
    with running_node(config, processor) as node:
        _send_and_abort(port, files[:4])
        job = wait_for(
            lambda: next((j for j in node.queue.jobs() if j.state == "skipped"), None),
            what="the job to be skipped",
        )
        stored = list(node.queue.input_folder(job.id).glob("*.dcm"))
    assert processor.calls == [] and destination.received == []
    assert job.error.startswith("series incomplete: the association sending it was aborted")
    assert len(stored) == 4  # kept in the storage folder, not deleted


def test_a_complete_resend_after_an_abort_is_not_marked(tmp_path, destination):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    config["completion"]["interrupted_timeout_s"] = 60
    with running_node(config) as node:
        _send_and_abort(port, files[:3])
        assert send_files(port, files) == [SUCCESS] * 6
        (job,) = wait_finished(node, 1)
    assert job.state == "done" and job.incomplete is None
    assert not any(d.startswith("INCOMPLETE") for d in _descriptions(destination))


def test_a_late_instance_while_the_series_is_processed_gives_one_result(tmp_path, destination):
    files = write_phantom_series(tmp_path / "s", slices=7)
    port = free_port()
    processor = CountingProcessor(hold=1)
    with running_node(
        node_config(tmp_path / "node", port, dimse_destination(destination)), processor
    ) as node:
        assert send_files(port, files[:6]) == [SUCCESS] * 6
        assert processor.started[0].wait(20)
        assert send_files(port, files[6:]) == [SUCCESS]  # the straggler
        processor.release(0)
        (job,) = wait_finished(node, 1)
        outputs = node.queue.outputs(job.id)
    assert job.state == "done"
    assert processor.counts() == [6, 7]  # the first run's results were dropped
    assert len(destination.received) == len(set(destination.sop_uids())) == 8
    assert sorted(destination.sop_uids()) == sorted(
        str(pydicom.dcmread(o.path, stop_before_pixels=True).SOPInstanceUID) for o in outputs
    )
    assert not any(d.startswith(("INCOMPLETE", "REVISED")) for d in _descriptions(destination))


def test_a_late_instance_while_the_series_is_queued_joins_it(tmp_path, destination):
    first = write_phantom_series(tmp_path / "a", seed=1)
    blocker = write_phantom_series(tmp_path / "b", seed=2)
    late = write_phantom_series(tmp_path / "c", seed=3, slices=7)
    port = free_port()
    processor = CountingProcessor(hold=2)
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    with running_node(config, processor) as node:
        send_files(port, first)
        assert processor.started[0].wait(20)  # the processing thread is busy with "a"
        send_files(port, blocker)
        send_files(port, late[:6])
        quiet = config["completion"]["quiet_period_s"]
        wait_for(
            lambda: all(
                j.open_associations == 0 and node.queue.clock() - j.last_activity > quiet
                for j in node.queue.jobs("receiving")
            ),
            what="both series to be complete",
        )
        processor.release(0)
        assert processor.started[1].wait(20)  # "b" runs, "c" waits in the queue
        (queued,) = node.queue.jobs("queued")
        assert send_files(port, late[6:]) == [SUCCESS]
        assert node.queue.get(queued.id).state == "receiving"
        processor.release(1)
        jobs = wait_finished(node, 3)
    assert [j.state for j in jobs] == ["done"] * 3
    assert processor.counts() == [6, 6, 7]
    assert len(destination.received) == 7 + 7 + 8


@pytest.mark.parametrize("policy", ["reprocess", "store"])
def test_late_instances_after_the_results_were_sent(tmp_path, destination, policy):
    files = write_phantom_series(tmp_path / "s", slices=7)
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    config["completion"]["late_instances"] = policy
    with running_node(config, processor) as node:
        send_files(port, files[:6])
        (first,) = wait_finished(node, 1)
        assert len(destination.received) == 7
        assert send_files(port, files[6:]) == [SUCCESS]
        jobs = wait_finished(node, 2)
        later = node.queue.jobs()[-1]
        inputs = sorted(p.name for p in node.queue.input_folder(later.id).glob("*.dcm"))
    assert first.state == "done" and (later.supersedes, later.revised) == (first.id, True)
    if policy == "store":
        assert [j.state for j in jobs] == ["done", "skipped"]
        assert "late_instances: store" in later.error
        assert processor.counts() == [6] and len(destination.received) == 7
        assert len(inputs) == 1  # the late instance is kept, not processed
        return
    assert [j.state for j in jobs] == ["done", "done"]
    assert processor.counts() == [6, 7]  # the whole series, earlier instances included
    assert len(inputs) == 7
    descriptions = _descriptions(destination)
    assert len(descriptions) == 7 + 8
    assert descriptions.count("REVISED") == 1  # the second SEG
    assert descriptions.count("REVISED ctpipe test derived") == 7
