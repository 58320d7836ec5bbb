"""Export of volumes and derived results: DICOM series and quick-look PNG previews."""

from ctpipe.export.dicom_series import SUPPORTED_TRANSFER_SYNTAXES, hu_to_stored, write_ct_series
from ctpipe.export.preview import write_preview_png

__all__ = [
    "SUPPORTED_TRANSFER_SYNTAXES",
    "hu_to_stored",
    "write_ct_series",
    "write_preview_png",
]
