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
    CountingProcessor,
    RecordingSCP,
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


def _series_uid(files) -> str:
    return str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)


def test_series_is_received_processed_and_results_sent(tmp_path, phantom_series, destination):
    port = free_port()
    processor = CountingProcessor()
    with running_node(
        node_config(tmp_path / "node", port, dimse_destination(destination)), processor
    ) as node:
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
    with running_node(
        node_config(tmp_path / "node", port, dimse_destination(destination)), processor
    ) as node:
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


def _with_uids(tmp_path: Path, **uids: str) -> Path:
    """CT_small.dcm with some UIDs replaced (the file meta follows the SOP Instance UID)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in uids.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / f"uids{len(list(tmp_path.glob('uids*.dcm')))}.dcm"
    ds.save_as(path)
    return path


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.filterwarnings("ignore:The value length")
@pytest.mark.parametrize(
    "uids, keyword, strict",
    [
        ({"SeriesInstanceUID": "../../../escaped"}, "SeriesInstanceUID", True),
        ({"SeriesInstanceUID": "../../../escaped"}, "SeriesInstanceUID", False),
        ({"SOPInstanceUID": "/tmp/absolute"}, "SOPInstanceUID", False),
        ({"SeriesInstanceUID": "1.2.3."}, "SeriesInstanceUID", True),
        ({"SeriesInstanceUID": "1.2.3 4"}, "SeriesInstanceUID", True),
        ({"StudyInstanceUID": "STUDY-0001"}, "StudyInstanceUID", True),
        ({"SOPInstanceUID": "1.2.3a"}, "SOPInstanceUID", True),
        ({"SeriesInstanceUID": "1." + "2" * 70}, "SeriesInstanceUID", True),
        ({"SeriesInstanceUID": "1." + "2" * 200}, "SeriesInstanceUID", False),
    ],
)
def test_invalid_uids_are_refused_and_stored_nowhere(tmp_path, caplog, uids, keyword, strict):
    path = _with_uids(tmp_path, **uids)
    storage = tmp_path / "sandbox" / "node"
    port = free_port()
    config = node_config(storage, port, None, completion={"quiet_period_s": 60})
    config["node"]["strict_uids"] = strict
    before = set(tmp_path.rglob("*"))
    absolute_existed = Path("/tmp/absolute").exists()
    caplog.set_level(logging.WARNING, logger="ctpipe.pacs")
    with running_node(config) as node:
        assert send_files(port, [path]) == [DATASET_DOES_NOT_MATCH]
        assert node.queue.jobs() == []
    created = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert created == {storage / "queue.sqlite", storage / "node.lock"} | {
        p for p in created if p.name.startswith("queue.sqlite-")
    }
    assert Path("/tmp/absolute").exists() == absolute_existed
    (refusal,) = [r.getMessage() for r in caplog.records if "refused instance" in r.getMessage()]
    assert "with status 0xA900" in refusal
    assert "is not a valid DICOM UID" in refusal and keyword in refusal


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
@pytest.mark.parametrize("strict, statuses", [(True, [DATASET_DOES_NOT_MATCH]), (False, [0])])
def test_leading_zeros_are_refused_unless_strict_uids_is_off(tmp_path, strict, statuses):
    path = _with_uids(tmp_path, SeriesInstanceUID="1.2.840.0123.1")
    port = free_port()
    config = node_config(tmp_path / "node", port, None, completion={"quiet_period_s": 60})
    config["node"]["strict_uids"] = strict
    with running_node(config) as node:
        assert send_files(port, [path]) == statuses
        assert [j.series_uid for j in node.queue.jobs()] == ["1.2.840.0123.1"] * (not strict)


def test_a_wrong_called_ae_title_is_rejected_and_logged(tmp_path, phantom_series, caplog):
    port = free_port()
    caplog.set_level(logging.WARNING, logger="ctpipe.pacs")
    with running_node(node_config(tmp_path / "node", port, None)) as node:
        refused = associate(port, phantom_series, called_ae="NOTCTPIPE")
        assert refused.is_rejected
        accepted = associate(port, phantom_series)
        assert accepted.is_established
        accepted.release()
        assert node.queue.jobs() == []
    (message,) = [
        r.getMessage() for r in caplog.records if "refused an association" in r.getMessage()
    ]
    assert "from SENDER" in message
    assert "called AE title 'NOTCTPIPE' is not this node's ('CTPIPE')" in message


def test_the_called_ae_title_check_can_be_turned_off(tmp_path, phantom_series):
    port = free_port()
    config = node_config(tmp_path / "node", port, None, completion={"quiet_period_s": 60})
    config["node"]["require_called_aet"] = False
    with running_node(config) as node:
        assoc = associate(port, phantom_series, called_ae="ANYNAME")
        assert assoc.is_established
        assert assoc.send_c_store(phantom_series[0]).Status == SUCCESS
        assoc.release()
        assert len(node.queue.jobs()) == 1


def test_destination_down_is_retried_with_backoff_and_never_dropped(tmp_path, phantom_series):
    port, dest_port = free_port(), free_port()
    destination = RecordingSCP(dest_port)
    with running_node(node_config(tmp_path / "node", port, dimse_destination(destination))) as node:
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
