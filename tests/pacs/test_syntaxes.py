"""Compressed transfer syntaxes: the node accepts what the reader decodes, stores it as sent.

The reference for "what the reader decodes" is pydicom's own decoder registry (the reader
decodes with pydicom); compressed test instances are made with pydicom's encoders (RLE,
JPEG-LS, JPEG 2000) from a CT phantom, or taken from pydicom's test files (JPEG).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder, get_encoder
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from ctpipe.io.dicom_volume import read_dicom_volume
from ctpipe.pacs.scp import SUCCESS
from ctpipe.pacs.syntaxes import accepted_transfer_syntaxes
from tests.pacs.conftest import (
    NODE_AET,
    CountingProcessor,
    dimse_destination,
    free_port,
    node_config,
    running_node,
    send_files,
    wait_finished,
    write_phantom_series,
)


def _dcmtk_storescu() -> str | None:
    """dcmtk's storescu: pynetdicom installs an app of the same name, earlier on the PATH
    of an activated virtual environment, with other options."""
    for candidate in (shutil.which("storescu"), "/usr/bin/storescu", "/usr/local/bin/storescu"):
        if candidate and Path(candidate).is_file() and "pynetdicom" not in _head(candidate):
            return candidate
    return None


def _head(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(2048).decode("latin-1")
    except OSError:
        return ""


STORESCU = _dcmtk_storescu()
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Syntaxes the reader decodes with the plugins ctpipe depends on, and one it cannot.
DECODED = [
    RLELossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    HTJ2KLossless,
]
#: Syntaxes pydicom can write (the encoders of the installed plugins), with their options.
ENCODED = {
    RLELossless: {},
    JPEGLSLossless: {},
    JPEG2000Lossless: {},
    JPEGLSNearLossless: {"jls_error": 2},
    JPEG2000: {"j2k_cr": [5]},
}
#: pydicom test files in the JPEG syntaxes, which pydicom cannot write.
JPEG_FILES = {JPEGBaseline8Bit: "SC_rgb_dcmtk_+eb+cr.dcm", JPEGLosslessSV1: "SC_rgb_jpeg_gdcm.dcm"}


def compress_series(files: list[Path], folder: Path, syntax: str, **options) -> list[Path]:
    """Copies of ``files`` with pixel data compressed in ``syntax`` by pydicom's encoder."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        ds = pydicom.dcmread(path)
        ds.compress(syntax, **options)
        target = folder / path.name
        ds.save_as(target, enforce_file_format=True)
        written.append(target)
    return written


def test_the_accepted_syntaxes_are_those_pydicom_decodes_here():
    accepted = accepted_transfer_syntaxes()
    assert accepted[:2] == [ImplicitVRLittleEndian, ExplicitVRLittleEndian]
    for uid in DECODED:
        assert (uid in accepted) == get_decoder(uid).is_available, uid.name
    assert MPEG2MPML not in accepted  # no pixel decoder


def test_the_node_negotiates_every_decodable_syntax(tmp_path):
    from pynetdicom import AE

    port = free_port()
    config = node_config(tmp_path / "node", port, None)
    with running_node(config):
        ae = AE(ae_title="SENDER")
        for uid in [*DECODED, MPEG2MPML]:
            ae.add_requested_context(CT_IMAGE_STORAGE, uid)
        assoc = ae.associate("127.0.0.1", port, ae_title=NODE_AET)
        assert assoc.is_established
        accepted = {cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
        assoc.release()
    expected = {uid for uid in DECODED if get_decoder(uid).is_available}
    assert accepted == expected
    assert expected >= {RLELossless, JPEG2000Lossless, JPEGLSLossless}  # ctpipe's dependencies


def _compressed_instances(tmp_path: Path) -> list[Path]:
    """One phantom slice per encodable syntax (each its own SOP instance), the JPEG files."""
    source = write_phantom_series(tmp_path / "plain", slices=len(ENCODED), grid=(64, 64))
    files = []
    for (syntax, options), path in zip(ENCODED.items(), source, strict=True):
        if get_encoder(syntax).is_available:
            files += compress_series([path], tmp_path / syntax.name.split()[0], syntax, **options)
    for syntax, name in JPEG_FILES.items():
        if get_decoder(syntax).is_available:
            files.append(Path(get_testdata_file(name)))
    return files


def test_compressed_instances_are_stored_as_received(tmp_path):
    files = _compressed_instances(tmp_path)
    assert len(files) >= 5
    port = free_port()
    config = node_config(tmp_path / "node", port, None, completion={"quiet_period_s": 60})
    with running_node(config) as node:
        assert send_files(port, files) == [SUCCESS] * len(files)
        stored = {p.stem: p for p in (tmp_path / "node").glob("jobs/*/input/*.dcm")}
        assert len(node.queue.jobs()) == len({_series(f) for f in files})
    assert len(stored) == len(files)
    for path in files:
        sent = pydicom.dcmread(path)
        kept = pydicom.dcmread(stored[str(sent.SOPInstanceUID)])
        assert kept.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert kept.PixelData == sent.PixelData  # the compressed bytes, not transcoded
        np.testing.assert_array_equal(kept.pixel_array, sent.pixel_array)


def _series(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_an_rle_series_is_received_and_processed(tmp_path, destination):
    plain = write_phantom_series(tmp_path / "plain")
    files = compress_series(plain, tmp_path / "rle", RLELossless)
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))
    with running_node(config, processor) as node:
        assert send_files(port, files) == [SUCCESS] * 6
        (job,) = wait_finished(node, 1)
        inputs = node.queue.input_folder(job.id)
        _assert_stored_and_decoded(inputs, plain, RLELossless)
    assert job.state == "done", job.error
    assert processor.counts() == [6] and len(destination.received) == 7


def _assert_stored_and_decoded(inputs: Path, plain: list[Path], syntax: str) -> None:
    stored = sorted(inputs.glob("*.dcm"))
    assert len(stored) == len(plain)
    assert {str(pydicom.dcmread(p).file_meta.TransferSyntaxUID) for p in stored} == {syntax}
    # what the node stored reads to the same HU volume as the uncompressed original
    np.testing.assert_array_equal(
        read_dicom_volume(inputs).hu, read_dicom_volume(plain[0].parent).hu
    )


@pytest.mark.skipif(STORESCU is None, reason="storescu is not installed (Debian package dcmtk)")
def test_storescu_sends_an_rle_series_and_a_wrong_called_ae_is_rejected(tmp_path, destination):
    plain = write_phantom_series(tmp_path / "plain")
    files = compress_series(plain, tmp_path / "rle", RLELossless)
    port = free_port()
    processor = CountingProcessor()
    config = node_config(tmp_path / "node", port, dimse_destination(destination))

    def storescu(called_ae: str) -> subprocess.CompletedProcess:
        # -xr: propose RLE Lossless, the files' syntax (storescu cannot decompress RLE)
        command = [STORESCU, "-xr", "-aet", "STORESCU", "-aec", called_ae, "127.0.0.1", str(port)]
        return subprocess.run(
            [*command, *map(str, files)], capture_output=True, text=True, timeout=60
        )

    with running_node(config, processor) as node:
        refused = storescu("NOTCTPIPE")
        assert refused.returncode != 0
        assert "Called AE Title Not Recognized" in refused.stdout + refused.stderr
        assert node.queue.jobs() == []
        sent = storescu(NODE_AET)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        (job,) = wait_finished(node, 1)
        _assert_stored_and_decoded(node.queue.input_folder(job.id), plain, RLELossless)
    assert job.state == "done" and job.calling_aet == "STORESCU"
    assert processor.counts() == [6] and len(destination.received) == 7
