"""CT input and output: DICOM series discovery and reading, NIfTI, AAPM pairs, manifests.

Names are imported lazily, so ``import ctpipe.io`` costs nothing until one is used.

Example:
    >>> from ctpipe.io import load_ct, read_study, scan_dicom
    >>> volume = read_study("/data/CT/series1")  # doctest: +SKIP
    >>> image = load_ct("/data/CT/series1")  # the same, as a MONAI MetaTensor  # doctest: +SKIP
"""

from __future__ import annotations

from ctpipe.lazy import lazy_exports

_EXPORTS = {
    "ctpipe.io.discovery": ("scan_dicom", "discover_series", "DicomScan", "DicomSeries"),
    "ctpipe.io.dicom_header": ("SliceHeader", "read_slice_header"),
    "ctpipe.io.dicom_volume": ("CTVolume", "read_dicom_volume", "select_series"),
    "ctpipe.io.reader": ("CTSeriesReader", "ct_loader", "ct_loader_dict", "load_ct", "read_study"),
    "ctpipe.io.nifti": ("read_nifti", "write_nifti"),
    "ctpipe.io.aapm": ("find_aapm_pairs", "split_by_patient", "write_datalist"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
