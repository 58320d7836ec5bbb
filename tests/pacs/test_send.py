"""Senders: C-STORE SCU and STOW-RS, and how they report a destination's refusal."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.dataset import Dataset

from ctpipe.pacs.send import DimseSender, SendError, StowSender, _failed_sops
from tests.pacs.conftest import RecordingSCP, free_port


def test_c_store_sends_in_order_and_reports_each_file(destination, phantom_series):
    sent = []
    DimseSender("CTPIPE", destination.ae_title, "127.0.0.1", destination.port).send(
        phantom_series, sent.append
    )
    assert sent == phantom_series
    expected = [str(pydicom.dcmread(p).SOPInstanceUID) for p in phantom_series]
    assert destination.sop_uids() == expected
    assert destination.received[0].PixelData == pydicom.dcmread(phantom_series[0]).PixelData


def test_a_failure_status_stops_at_that_file(phantom_series):
    scp = RecordingSCP(free_port(), status=0xA700).start()
    sent = []
    try:
        with pytest.raises(SendError, match=r"IM0001.dcm refused with status 0xA700"):
            DimseSender("CTPIPE", scp.ae_title, "127.0.0.1", scp.port).send(
                phantom_series, sent.append
            )
    finally:
        scp.stop()
    assert sent == []


def test_a_rejected_association_is_named(phantom_series):
    scp = RecordingSCP(free_port(), allowed_calling_aets=("OTHER",)).start()
    try:
        with pytest.raises(SendError, match=r"C-STORE DEST@127.0.0.1:\d+ rejected the association"):
            DimseSender("CTPIPE", scp.ae_title, "127.0.0.1", scp.port).send(phantom_series, print)
    finally:
        scp.stop()


def test_a_file_without_file_meta_is_named(tmp_path, destination):
    bad = tmp_path / "notes.txt"
    bad.write_text("not DICOM")
    with pytest.raises(SendError, match=r"notes\.txt: not a DICOM file with a file meta header"):
        DimseSender("CTPIPE", destination.ae_title, "127.0.0.1", destination.port).send(
            [bad], print
        )


def test_stow_to_a_server_that_is_down(phantom_series):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(SendError, match=rf"STOW-RS {url}: ConnectionError"):
        StowSender(url, timeout_s=5).send(phantom_series, print)


def test_stow_failed_sop_sequence_is_read():
    response = Dataset()
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    item.FailureReason = 0xA700
    response.FailedSOPSequence = [item]
    assert _failed_sops(response) == {"1.2.3": "0xA700"}
    assert _failed_sops(Dataset()) == {}
