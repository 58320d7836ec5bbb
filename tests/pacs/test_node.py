"""The DICOM node in-process: receive, complete, process, send; and its robustness."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from ctpipe.pacs.node import PacsNode, StorageLockedError
from ctpipe.pacs.scp import CANNOT_UNDERSTAND, DATASET_DOES_NOT_MATCH, SUCCESS
from tests.pacs.conftest import (
    RecordingSCP,
    associate,
    free_port,
    node_config,
    running_node,
    send_files,
    wait_finished,
    wait_for,
    write_phantom_series,
)


def _dimse(scp: RecordingSCP) -> dict:
    retry = {"initial_delay_s": 0.2, "factor": 2.0, "max_delay_s": 0.8}
    return {"kind": "dimse", "ae_title": scp.ae_title, "port": scp.port, "retry": retry}


class CountingProcessor:
    """Wraps the test processor and records every call (thread-safe)."""

    def __init__(self) -> None:
        from tests.pacs.processors import threshold_seg

        self.inner = threshold_seg
        self.calls: list[tuple[Path, int]] = []
        self.lock = threading.Lock()

    def __call__(self, series: Path, output: Path) -> list[Path]:
        with self.lock:
            self.calls.append((series, len(list(series.glob("*.dcm")))))
        return self.inner(series, output)


def _series_uid(files) -> str:
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)


def test_series_is_received_processed_and_results_sent(tmp_path, phantom_series, destination):
    port = free_port()
    processor = CountingProcessor()
    with running_node(node_config(tmp_path / "node", port, _dimse(destination)), processor) as node:
        assert send_files(port, phantom_series) == [SUCCESS] * len(phantom_series)
        (job,) = wait_finished(node, 1)
        assert job.state == "done", job.error
        assert job.series_uid == _series_uid(phantom_series)
        assert job.calling_aet == "SENDER"
        outputs = node.queue.outputs(job.id)
    assert [count for _, count in processor.calls] == [len(phantom_series)]
    # every result file reached the destination once: 6 derived slices and one SEG
    sent = destination.sop_uids()
    expected = [
        str(pydicom.dcmread(o.path, stop_before_pixels=True).SOPInstanceUID) for o in outputs
    ]
    assert sorted(sent) == sorted(expected) and len(sent) == len(phantom_series) + 1
    modalities = sorted(str(ds.Modality) for ds in destination.received)
    assert modalities == ["CT"] * len(phantom_series) + ["SEG"]


def test_received_files_equal_what_was_sent(tmp_path, phantom_series):
    port = free_port()
    config = node_config(tmp_path / "node", port, None, completion={"quiet_period_s": 60})
    with running_node(config) as node:
        send_files(port, phantom_series)
        (job,) = node.queue.jobs()
        stored = sorted(node.queue.input_folder(job.id).glob("*.dcm"))
    assert job.state == "receiving"  # the quiet period has not passed
    by_uid = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in phantom_series}
    assert len(stored) == len(phantom_series)
    for path in stored:
        ds = pydicom.dcmread(path)
        assert path.name == f"{ds.SOPInstanceUID}.dcm"
        assert ds.PixelData == by_uid[ds.SOPInstanceUID].PixelData


def test_four_concurrent_senders(tmp_path, destination):
    series = [write_phantom_series(tmp_path / f"s{n}", seed=n) for n in range(4)]
    port = free_port()
    processor = CountingProcessor()
    statuses: list[list[int]] = []
    with running_node(node_config(tmp_path / "node", port, _dimse(destination)), processor) as node:
        threads = [
            threading.Thread(
                target=lambda f=files, n=n: statuses.append(send_files(port, f, f"S{n}"))
            )
            for n, files in enumerate(series)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        jobs = wait_finished(node, 4)
    assert statuses == [[SUCCESS] * 6] * 4
    assert sorted(j.state for j in jobs) == ["done"] * 4
    assert sorted(j.series_uid for j in jobs) == sorted(_series_uid(f) for f in series)
    assert sorted(count for _, count in processor.calls) == [6, 6, 6, 6]
    assert len(destination.received) == len(set(destination.sop_uids())) == 4 * 7


def test_one_series_sent_by_two_associations_at_once_is_one_job(tmp_path):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    processor = CountingProcessor()
    with running_node(node_config(tmp_path / "node", port, None), processor) as node:
        first, second = associate(port, files), associate(port, files)
        for path in files[:3]:
            assert first.send_c_store(path).Status == SUCCESS
        for path in files[3:]:
            assert second.send_c_store(path).Status == SUCCESS
        first.release()
        time.sleep(0.8)  # longer than the quiet period: the second association is still open
        assert node.queue.jobs()[0].state == "receiving"
        second.release()
        (job,) = wait_finished(node, 1)
    assert job.state == "done"
    assert [count for _, count in processor.calls] == [6]


def test_aborted_association_waits_for_the_full_series(tmp_path):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, None)
    config["completion"]["interrupted_timeout_s"] = 60
    with running_node(config, processor) as node:
        assoc = associate(port, files)
        for path in files[:3]:
            assert assoc.send_c_store(path).Status == SUCCESS
        assoc.abort()
        time.sleep(1.0)  # well past the quiet period
        (job,) = node.queue.jobs()
        assert (job.state, job.interrupted) == ("receiving", True)
        assert processor.calls == []
        # the sender sends the whole series again: the duplicates replace the first copies
        assert send_files(port, files) == [SUCCESS] * 6
        (job,) = wait_finished(node, 1)
    assert job.state == "done"
    assert [count for _, count in processor.calls] == [6]


def test_interrupted_series_is_processed_after_the_timeout(tmp_path):
    files = write_phantom_series(tmp_path / "s")
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, None)
    config["completion"]["interrupted_timeout_s"] = 0.5
    with running_node(config, processor) as node:
        assoc = associate(port, files)
        for path in files[:4]:
            assert assoc.send_c_store(path).Status == SUCCESS
        assoc.abort()
        (job,) = wait_finished(node, 1)
    assert job.state == "done"  # nothing received is lost: the four instances are processed
    assert [count for _, count in processor.calls] == [4]


def _truncated_copy(source: Path, target: Path) -> Path:
    """``source`` cut inside its StudyDate: what arrives when a file was truncated."""
    from pynetdicom.dsutils import split_dataset

    _, offset = split_dataset(source)
    data = source.read_bytes()
    study_date = data.index(b"\x08\x00\x20\x00", offset)  # tag (0008,0020), little endian
    target.write_bytes(data[: study_date + 10])
    return target


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_malformed_data_sets_are_refused_with_a_status_and_logged(tmp_path, caplog):
    missing_series = tmp_path / "no_series.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.SeriesInstanceUID
    ds.save_as(missing_series)
    truncated_pixels = Path(get_testdata_file("MR_truncated.dcm"))
    bad_value = Path(get_testdata_file("badVR.dcm"))  # an IS value of '1A'
    truncated = _truncated_copy(Path(get_testdata_file("CT_small.dcm")), tmp_path / "cut.dcm")
    port = free_port()
    config = node_config(tmp_path / "node", port, None)
    caplog.set_level(logging.WARNING, logger="ctpipe.pacs")
    with running_node(config) as node:
        statuses = send_files(port, [missing_series, truncated_pixels, bad_value, truncated])
        jobs = node.queue.jobs()
    assert statuses == [
        DATASET_DOES_NOT_MATCH,
        CANNOT_UNDERSTAND,
        CANNOT_UNDERSTAND,
        DATASET_DOES_NOT_MATCH,
    ]
    assert jobs == []
    assert list((tmp_path / "node").glob("jobs/*/input/*.dcm")) == []
    refusals = [r.getMessage() for r in caplog.records if "refused instance" in r.getMessage()]
    assert len(refusals) == 4
    assert "SeriesInstanceUID is missing" in refusals[0]
    assert "pixel data holds 8130 bytes, the image needs 8192" in refusals[1]
    assert "must be a whole number, got '1A'" in refusals[2]
    assert "StudyInstanceUID is missing" in refusals[3]


def test_unknown_calling_ae_titles_are_refused(tmp_path, phantom_series, caplog):
    port = free_port()
    config = node_config(tmp_path / "node", port, None)
    config["node"]["allowed_calling_aets"] = ["TRUSTED"]
    caplog.set_level(logging.WARNING, logger="ctpipe.pacs")
    with running_node(config) as node:
        refused = associate(port, phantom_series, calling_ae="INTRUDER")
        assert refused.is_rejected
        accepted = associate(port, phantom_series, calling_ae="TRUSTED")
        assert accepted.is_established
        assert accepted.send_c_store(phantom_series[0]).Status == SUCCESS
        accepted.release()
        assert [j.calling_aet for j in node.queue.jobs()] == ["TRUSTED"]
    assert any("INTRUDER" in r.getMessage() for r in caplog.records)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize(
    "series_uid, sop_uid",
    [("../../../escaped", "../../../../escaped_sop"), ("1.2.3/../../x", "/tmp/absolute")],
)
def test_tag_values_never_name_files_outside_the_storage(tmp_path, series_uid, sop_uid):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    path = tmp_path / "evil.dcm"
    ds.save_as(path)
    storage = tmp_path / "sandbox" / "node"
    port = free_port()
    before = set(tmp_path.rglob("*"))
    absolute_existed = Path("/tmp/absolute").exists()
    with running_node(node_config(storage, port, None, completion={"quiet_period_s": 60})) as node:
        assert send_files(port, [path]) == [SUCCESS]
        (job,) = node.queue.jobs()
        (stored,) = node.queue.input_folder(job.id).iterdir()
    assert job.series_uid == series_uid  # the value is kept in the queue, not in a path
    assert stored.name.startswith("x-") and stored.resolve().is_relative_to(storage.resolve())
    created = {p for p in set(tmp_path.rglob("*")) - before if not p.is_relative_to(storage)}
    assert created == {tmp_path / "sandbox"}
    assert Path("/tmp/absolute").exists() == absolute_existed


def test_destination_down_is_retried_with_backoff_and_never_dropped(tmp_path, phantom_series):
    port, dest_port = free_port(), free_port()
    destination = RecordingSCP(dest_port)
    with running_node(node_config(tmp_path / "node", port, _dimse(destination))) as node:
        send_files(port, phantom_series)
        job = wait_for(
            lambda: next((j for j in node.queue.jobs() if j.send_attempts >= 3), None),
            what="three failed sending attempts",
        )
        assert job.state == "sending"
        assert "cannot be reached" in job.error
        # backoff 0.2, 0.4, 0.8 s: the next attempt is 0.8 s after the third failure
        assert job.next_attempt_at - job.updated_at == pytest.approx(0.8)
        destination.start()
        try:
            (job,) = wait_finished(node, 1)
        finally:
            destination.stop()
    assert job.state == "done" and job.error is None
    assert len(destination.received) == len(set(destination.sop_uids())) == 7


def test_echo_and_a_second_node_on_the_same_storage(tmp_path):
    port = free_port()
    config = node_config(tmp_path / "node", port, None)
    with running_node(config) as node:
        assoc = associate(port)
        assert assoc.send_c_echo().Status == SUCCESS
        assoc.release()
        from ctpipe.pacs.config import ServeConfig

        other = PacsNode(ServeConfig.from_dict({**config, "node": {"port": free_port()}}), print)
        with pytest.raises(StorageLockedError, match="another ctpipe serve is using"):
            other.start()
        assert node.queue is not None
