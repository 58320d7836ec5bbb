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
    "scan_dicom": "ctpipe.io.discovery",
    "discover_series": "ctpipe.io.discovery",
    "DicomScan": "ctpipe.io.discovery",
    "DicomSeries": "ctpipe.io.discovery",
    "SliceHeader": "ctpipe.io.dicom_header",
    "read_slice_header": "ctpipe.io.dicom_header",
    "CTVolume": "ctpipe.io.dicom_volume",
    "read_dicom_volume": "ctpipe.io.dicom_volume",
    "select_series": "ctpipe.io.dicom_volume",
    "CTSeriesReader": "ctpipe.io.reader",
    "ct_loader": "ctpipe.io.reader",
    "ct_loader_dict": "ctpipe.io.reader",
    "load_ct": "ctpipe.io.reader",
    "read_study": "ctpipe.io.reader",
    "read_nifti": "ctpipe.io.nifti",
    "write_nifti": "ctpipe.io.nifti",
    "find_aapm_pairs": "ctpipe.io.aapm",
    "split_by_patient": "ctpipe.io.aapm",
    "write_datalist": "ctpipe.io.aapm",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
