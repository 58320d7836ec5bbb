from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from ctpipe.errors import CorruptDicomError, NotDicomError
from ctpipe.io.dicom_header import read_slice_header


def test_ct_small_header_matches_pydicom():
    path = get_testdata_file("CT_small.dcm")
    header = read_slice_header(path)
    ds = pydicom.dcmread(path)
    assert header.series_instance_uid == ds.SeriesInstanceUID
    assert header.position == tuple(float(v) for v in ds.ImagePositionPatient)
    assert header.rescale_slope == float(ds.RescaleSlope)
    assert header.is_native_single_frame
    raw = np.fromfile(path, dtype="<i2", count=128 * 128, offset=header.pixel_data_offset)
    np.testing.assert_array_equal(raw.reshape(128, 128), ds.pixel_array)


def test_compressed_is_not_native():
    assert not read_slice_header(get_testdata_file("MR_small_RLE.dcm")).is_native_single_frame


def test_not_dicom(tmp_path: Path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(NotDicomError, match=r"a\.txt: not a DICOM file"):
        read_slice_header(tmp_path / "a.txt")


def test_structured_report_has_no_image():
    assert read_slice_header(get_testdata_file("test-SR.dcm")) is None


def test_truncated_pixels_reported_from_size(tmp_path: Path):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-1000])
    header = read_slice_header(tmp_path / "cut.dcm")
    assert header.pixel_data_problem.startswith("file is truncated: pixel data needs 32768 bytes")


def test_header_cut_short_is_corrupt(tmp_path: Path):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:1500])
    with pytest.raises(CorruptDicomError, match="without pixel data"):
        read_slice_header(tmp_path / "cut.dcm")
