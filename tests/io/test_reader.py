"""The MONAI reader: DICOM through ctpipe, other formats through MONAI, errors not swallowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, Spacingd

from ctpipe.errors import SeriesGeometryError
from ctpipe.io.dicom_volume import read_dicom_volume
from ctpipe.io.geometry import lps_to_ras
from ctpipe.io.nifti import write_nifti
from ctpipe.io.reader import CTSeriesReader, ct_loader_dict, is_dicom_source, load_ct


def test_load_ct_is_metatensor_with_ras_affine(small_series):
    folder, hu, affine = small_series
    image = load_ct(folder)
    assert isinstance(image, MetaTensor) and image.dtype == torch.float32
    np.testing.assert_array_equal(image.numpy(), hu)
    np.testing.assert_allclose(image.affine.numpy(), lps_to_ras(affine), atol=1e-6)
    assert image.meta["Modality"] == "CT"
    assert len(image.meta["ctpipe_source_files"]) == hu.shape[2]


def test_refused_series_is_not_read_by_another_reader(small_series):
    folder, _, _ = small_series
    files = read_dicom_volume(folder).meta["ctpipe_source_files"]
    Path(files[2]).unlink()  # an interior slice: a gap
    with pytest.raises(SeriesGeometryError, match="missing slice"):
        load_ct(folder)
    with pytest.raises(SeriesGeometryError, match="missing slice"):
        ct_loader_dict("image")({"image": str(folder)})


def test_nifti_goes_through_monai(small_series, tmp_path):
    _, hu, affine = small_series
    path = write_nifti(hu, lps_to_ras(affine), tmp_path / "ct.nii.gz")
    image = load_ct(path)
    np.testing.assert_array_equal(image.numpy(), hu)
    np.testing.assert_allclose(image.affine.numpy(), lps_to_ras(affine), atol=1e-5)


def test_dictionary_chain_with_monai_spacing(small_series):
    folder, hu, _ = small_series
    chain = Compose(
        [
            ct_loader_dict(["image"]),
            EnsureChannelFirstd(keys="image"),
            Spacingd(keys="image", pixdim=(1.6, 1.4, 5.0), mode="nearest"),
        ]
    )
    out = chain({"image": str(folder)})["image"]
    assert out.shape[1:3] == (12, 10)
    np.testing.assert_allclose(np.linalg.norm(out.affine.numpy()[:3, :3], axis=0), [1.6, 1.4, 5.0])
    np.testing.assert_array_equal(out[0, :, :, :3].numpy(), hu[::2, ::2, ::2])


def test_reader_selects_series_by_uid(small_series):
    folder, hu, _ = small_series
    uid = read_dicom_volume(folder).meta["SeriesInstanceUID"]
    volume = CTSeriesReader(series_uid=uid).read(str(folder))
    data, meta = CTSeriesReader().get_data(volume)
    np.testing.assert_array_equal(data, hu)
    assert meta["original_channel_dim"] == "no_channel"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.nii.gz", False),
        ("a.nrrd", False),
        ("IM0001.dcm", True),
        ("x.IMA", True),
        ("CT.1.2.3", True),
    ],
)
def test_is_dicom_source(name, expected):
    assert is_dicom_source(name) is expected
