"""Bad inputs, each built from a tiny seeded phantom: what a hostile but realistic user gives.

Every builder takes a folder holding a fresh copy of the template (``dicom/`` a 4-slice
40 x 40 CT series, ``ct.nii.gz`` the same volume as NIfTI) and returns a :class:`Bad`:
the path to give ctpipe, a fragment that names the offending file or folder in the
error, and a fragment of the problem.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

#: The phantom every case starts from: in-plane size above the commands' minimum.
SHAPE, SPACING = (40, 40, 4), (7.0, 7.0, 5.0)


@dataclass(frozen=True)
class Bad:
    """A bad input: what to pass, what the error must name, and the problem it states."""

    path: Path
    names: str
    problem: str
    args: tuple[str, ...] = field(default_factory=tuple)


Builder = Callable[[Path], Bad]


def write_template(folder: Path) -> None:
    """The good inputs every case copies: a DICOM series and its NIfTI."""
    from ctpipe.phantom import make_phantom, write_phantom

    files = write_phantom(folder / "phantom", make_phantom(shape=SHAPE, spacing=SPACING, seed=7))
    files.dicom_folder.rename(folder / "dicom")
    files.ct_nifti.rename(folder / "ct.nii.gz")
    shutil.rmtree(folder / "phantom")


# --- DICOM ------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


def _edit_all(folder: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    for path in sorted(folder.glob("*.dcm")):
        _edit(path, change)


def _delete(keyword: str) -> Callable[[pydicom.Dataset], None]:
    return lambda ds: delattr(ds, keyword)


def _set(**values: object) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        for keyword, value in values.items():
            setattr(ds, keyword, value)

    return change


def one_slice(change: Callable[[pydicom.Dataset], None], problem: str) -> Builder:
    """Change the second slice only: the error must name that file."""

    def build(root: Path) -> Bad:
        _edit(root / "dicom" / "IM0002.dcm", change)
        return Bad(root / "dicom", "IM0002.dcm", problem)

    return build


def every_slice(change: Callable[[pydicom.Dataset], None], problem: str) -> Builder:
    """Change every slice: the error must name the series folder."""

    def build(root: Path) -> Bad:
        _edit_all(root / "dicom", change)
        return Bad(root / "dicom", str(root / "dicom"), problem)

    return build


def dicom_file(change: Callable[[pydicom.Dataset], None], problem: str) -> Builder:
    """One changed file given on its own."""

    def build(root: Path) -> Bad:
        path = root / "dicom" / "IM0003.dcm"
        _edit(path, change)
        return Bad(path, "IM0003.dcm", problem)

    return build


def raw_value(keyword: str, text: str, name: str, problem: str) -> Builder:
    """Write text that is no number into a numeric element (pydicom refuses to write it)."""

    def build(root: Path) -> Bad:
        path = root / "dicom" / name
        raw = text.encode() + (b" " if len(text) % 2 else b"")
        placeholder = b"+" + b"9" * (len(raw) - 1)  # no "+" elsewhere in the file
        _edit(path, _set(**{keyword: placeholder.decode()}))
        data = path.read_bytes()
        assert data.count(placeholder) == 1
        path.write_bytes(data.replace(placeholder, raw))
        return Bad(root / "dicom", name, problem)

    return build


def damaged_header(root: Path) -> Bad:
    """The last slice cut inside its header: it cannot be told apart from a stray file."""
    path = root / "dicom" / "IM0004.dcm"
    path.write_bytes(path.read_bytes()[:300])
    return Bad(root / "dicom", "damaged DICOM file IM0004.dcm", "the series may be incomplete")


def newline_in_name(root: Path) -> Bad:
    """A bad slice whose name holds a newline: the error is still one line."""
    _edit(root / "dicom" / "IM0002.dcm", _delete("RescaleSlope"))
    (root / "dicom" / "IM0002.dcm").rename(root / "dicom" / "IM\n0002.dcm")
    return Bad(root / "dicom", "(IM\\n0002.dcm)", "RescaleSlope missing in 1 of 4")


def pipe_input(root: Path) -> Bad:
    path = root / "scan.nii.gz"
    os.mkfifo(path)
    return Bad(path, "scan.nii.gz", "is not a regular file or folder (a pipe, socket or device)")


def _rle_huge(ds: pydicom.Dataset) -> None:
    from pydicom.uid import RLELossless

    ds.compress(RLELossless)
    ds.Rows = ds.Columns = 65535  # declares 4 Gi pixels; the data holds 1600


def _undecodable_jpeg2000(ds: pydicom.Dataset) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"garbage!" * 50])


def truncated_slice(root: Path) -> Bad:
    path = root / "dicom" / "IM0002.dcm"
    path.write_bytes(path.read_bytes()[:-700])
    return Bad(root / "dicom", "IM0002.dcm", "file is truncated")


def gap(root: Path) -> Bad:
    (root / "dicom" / "IM0002.dcm").unlink()
    return Bad(root / "dicom", str(root / "dicom"), "gap of 10.000 mm")


def duplicate(root: Path) -> Bad:
    from pydicom.uid import generate_uid

    copy = root / "dicom" / "IM0009.dcm"
    shutil.copy(root / "dicom" / "IM0002.dcm", copy)
    _edit(copy, _set(SOPInstanceUID=generate_uid()))
    return Bad(root / "dicom", "IM0009.dcm", "duplicate slice positions")


def empty_folder(root: Path) -> Bad:
    folder = root / "empty"
    folder.mkdir()
    return Bad(folder, str(folder), "no files found (empty folder)")


def text_folder(root: Path) -> Bad:
    folder = root / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    (folder / "IM0001.dcm").write_bytes(b"\x00" * 300)
    return Bad(folder, str(folder), "no DICOM image series among 2 file(s)")


def random_bytes_file(root: Path) -> Bad:
    path = root / "noise.dcm"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    return Bad(path, "noise.dcm", "not a DICOM, NIfTI")


def png_file(root: Path) -> Bad:
    from PIL import Image

    path = root / "slice.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(path)
    return Bad(path, "slice.png", "not a DICOM, NIfTI")


def zero_byte_file(root: Path) -> Bad:
    path = root / "IM0001"
    path.write_bytes(b"")
    return Bad(path, "IM0001", "not a DICOM, NIfTI")


def missing_path(root: Path) -> Bad:
    return Bad(root / "typo", str(root / "typo"), "no such file or folder")


# --- NIfTI ------------------------------------------------------------------------


def _phantom_nifti(root: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(root / "ct.nii.gz")
    return np.asarray(image.dataobj, dtype=np.float32), image.affine


def _save(array: np.ndarray, affine: np.ndarray, path: Path, **header: object) -> Path:
    image = nib.Nifti1Image(array, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    for key, value in header.items():
        image.header[key] = value
    nib.save(image, path)
    return path


def nifti_values(change: Callable[[np.ndarray], np.ndarray], problem: str) -> Builder:
    def build(root: Path) -> Bad:
        hu, affine = _phantom_nifti(root)
        path = _save(change(hu.copy()).astype(np.float32), affine, root / "bad.nii.gz")
        return Bad(path, "bad.nii.gz", problem)

    return build


def _nan_share(hu: np.ndarray) -> np.ndarray:
    flat = hu.reshape(-1)
    flat[::160] = np.nan  # 0.6 % of the voxels
    return hu


def _inf_one(hu: np.ndarray) -> np.ndarray:
    hu[3, 4, 1] = np.inf
    return hu


def _mr_like(hu: np.ndarray) -> np.ndarray:
    return (hu + 1024.0) * 1.5  # 0 .. ~4000, no air


def nifti_affine(affine_of: Callable[[np.ndarray], np.ndarray], problem: str) -> Builder:
    def build(root: Path) -> Bad:
        hu, affine = _phantom_nifti(root)
        image = nib.Nifti1Image(hu, None)
        image.header.set_sform(affine_of(affine.copy()), code=1)
        image.header.set_qform(None, code=0)
        path = root / "bad.nii.gz"
        nib.save(image, path)
        return Bad(path, "bad.nii.gz", problem)

    return build


def _collinear(affine: np.ndarray) -> np.ndarray:
    affine[:3, 2] = affine[:3, 0]
    return affine


def _metres(affine: np.ndarray) -> np.ndarray:
    affine[:3, :3] *= 1e6
    return affine


def _nan_affine(affine: np.ndarray) -> np.ndarray:
    affine[0, 3] = np.nan
    return affine


def nifti_array(array_of: Callable[[np.ndarray], np.ndarray], problem: str) -> Builder:
    def build(root: Path) -> Bad:
        hu, affine = _phantom_nifti(root)
        path = root / "bad.nii.gz"
        nib.save(nib.Nifti1Image(array_of(hu), affine), path)
        return Bad(path, "bad.nii.gz", problem)

    return build


def nifti_without_voxel_size(root: Path) -> Bad:
    hu, _ = _phantom_nifti(root)
    image = nib.Nifti1Image(hu, None)
    image.header.set_sform(None, code=0)
    image.header.set_qform(None, code=0)
    image.header["pixdim"][1:4] = 0
    path = root / "nozoom.nii.gz"
    nib.save(image, path)
    return Bad(path, "nozoom.nii.gz", "the voxel size is unknown: no sform")


def truncated_nii(root: Path) -> Bad:
    hu, affine = _phantom_nifti(root)
    path = _save(hu, affine, root / "cut.nii")
    path.write_bytes(path.read_bytes()[: 352 + 1000])
    return Bad(path, "cut.nii", "truncated: the header declares")


def truncated_gz(root: Path) -> Bad:
    path = root / "cut.nii.gz"
    data = (root / "ct.nii.gz").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return Bad(path, "cut.nii.gz", "truncated or damaged NIfTI data")


def not_gzip(root: Path) -> Bad:
    path = root / "plain.nii.gz"
    path.write_text("this is not gzip\n" * 50)
    return Bad(path, "plain.nii.gz", "not a readable NIfTI file")


def empty_nifti(root: Path) -> Bad:
    path = root / "empty.nii.gz"
    path.write_bytes(b"")
    return Bad(path, "empty.nii.gz", "not a readable NIfTI file")


def _header_bomb(path: Path, shape: tuple[int, ...], dtype: type, data: bytes) -> None:
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_sform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\0\0\0\0" + data
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


def gzip_bomb(root: Path) -> Bad:
    path = root / "bomb.nii.gz"  # declares 2048^3 bytes (8 GiB); the file is about 1 kB
    _header_bomb(path, (2048, 2048, 2048), np.uint8, b"\0" * 100_000)
    return Bad(path, "bomb.nii.gz", "above the limit of")


def header_declares_more(root: Path) -> Bad:
    path = root / "short.nii"
    _header_bomb(path, (400, 400, 400), np.int16, b"\0" * 4000)
    return Bad(path, "short.nii", "truncated: the header declares")


def empty_dimension(root: Path) -> Bad:
    path = root / "flat.nii"
    _header_bomb(path, (40, 0, 4), np.int16, b"")
    return Bad(path, "flat.nii", "the header declares an empty volume")


def negative_dimension(root: Path) -> Bad:
    path = root / "negative.nii"
    header = nib.Nifti1Header()
    header.set_data_shape((40, 40, 4))
    header["dim"][2] = -40
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 12800)
    return Bad(path, "negative.nii", "the header declares a negative size")


def scaled_to_inf(root: Path) -> Bad:
    hu, affine = _phantom_nifti(root)
    image = nib.Nifti1Image(hu.astype(np.int16), affine)
    image.header.set_slope_inter(1e38, 0.0)
    path = root / "scaled.nii.gz"
    nib.save(image, path)
    return Bad(path, "scaled.nii.gz", "are NaN or infinite")


def rgb_nifti(root: Path) -> Bad:
    rgb = np.zeros((40, 40, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = root / "rgb.nii.gz"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), path)
    return Bad(path, "rgb.nii.gz", "are not numbers of one channel")


def tiny_volume(root: Path) -> Bad:
    hu, affine = _phantom_nifti(root)
    path = _save(np.ascontiguousarray(hu[:12, :12, :2]), affine, root / "tiny.nii.gz")
    return Bad(path, "tiny.nii.gz", "slices of 12 x 12 pixels are too small")


def over_limit_flag(root: Path) -> Bad:
    flag = ("--max-voxels", "1000")
    return Bad(root / "ct.nii.gz", "ct.nii.gz", "above the limit of 1000 voxels", flag)


def dicom_over_limit_flag(root: Path) -> Bad:
    flag = ("--max-voxels", "1000")
    return Bad(root / "dicom", "IM0001.dcm", "40 x 40 x 4 = 6400 voxels", flag)


# --- NRRD -------------------------------------------------------------------------


def _nrrd(root: Path, name: str = "ct.nrrd", array: np.ndarray | None = None) -> Path:
    import SimpleITK as sitk

    hu, _ = _phantom_nifti(root)
    values = hu.transpose(2, 1, 0) if array is None else array
    image = sitk.GetImageFromArray(values.astype(np.int16))
    image.SetSpacing(SPACING[: image.GetDimension()])
    path = root / name
    sitk.WriteImage(image, str(path), useCompression=False)
    return path


def nrrd_2d(root: Path) -> Bad:
    path = _nrrd(root, "slice.nrrd", np.zeros((40, 40)))
    return Bad(path, "slice.nrrd", "expected a 3-D scalar volume, got 2-D")


def nrrd_truncated(root: Path) -> Bad:
    path = _nrrd(root)
    path.write_bytes(path.read_bytes()[:-5000])
    return Bad(path, "ct.nrrd", "cannot read the image")


def nrrd_huge(root: Path) -> Bad:
    path = _nrrd(root)
    data = path.read_bytes().replace(b"sizes: 40 40 4", b"sizes: 4000 4000 400", 1)
    path.write_bytes(data)
    return Bad(path, "ct.nrrd", "above the limit of")


# --- the corpus -------------------------------------------------------------------

#: Every bad input, by name: DICOM series and files, NIfTI, NRRD, other files.
CASES: dict[str, Builder] = {
    # HU trust: the rescale of a CT series
    "slope-missing-all": every_slice(
        _delete("RescaleSlope"), "RescaleSlope missing in 4 of 4 slice(s)"
    ),
    "slope-missing-one": one_slice(_delete("RescaleSlope"), "RescaleSlope missing in 1 of 4"),
    "intercept-missing-all": every_slice(
        _delete("RescaleIntercept"), "RescaleIntercept missing in 4 of 4"
    ),
    "intercept-missing-one": one_slice(
        _delete("RescaleIntercept"), "RescaleIntercept missing in 1 of 4"
    ),
    "slope-zero": one_slice(_set(RescaleSlope=0), "RescaleSlope is 0 in 1 of 4"),
    "slope-negative": one_slice(
        _set(RescaleSlope=-1), "RescaleSlope is negative or not finite in 1 of 4"
    ),
    "slope-overflow": every_slice(_set(RescaleSlope="1e39"), "RescaleSlope is above 100"),
    "intercept-huge": one_slice(
        _set(RescaleIntercept="-1e9"), "RescaleIntercept is beyond +-35000"
    ),
    "rescale-without-air": every_slice(
        _set(RescaleIntercept=2000), "does not look like CT in Hounsfield units"
    ),
    "slope-tiny": every_slice(_set(RescaleSlope=0.001), "nothing but air"),
    "slope-not-a-number": raw_value(
        "RescaleSlope", "abc", "IM0002.dcm", "RescaleSlope is negative or not finite in 1 of 4"
    ),
    "intercept-not-a-number": raw_value(
        "RescaleIntercept", "none", "IM0004.dcm", "RescaleIntercept is not finite in 1 of 4"
    ),
    "pixel-representation-flipped-all": every_slice(
        _set(PixelRepresentation=0), "beyond any CT scanner's range"
    ),
    "pixel-representation-flipped-one": one_slice(
        _set(PixelRepresentation=0), "slices disagree on PixelRepresentation: 1 in 3, 0 in 1"
    ),
    "modality-one-slice-mr": one_slice(
        _set(Modality="MR"), "slices disagree on Modality: CT in 3, MR in 1"
    ),
    # header against pixels
    "rows-too-many": one_slice(_set(Rows=41), "pixel data holds 3200 bytes, 3280 expected"),
    "rows-too-few": one_slice(_set(Rows=39), "more than the 3120 that Rows x Columns"),
    "columns-too-few": one_slice(_set(Columns=20), "more than the 1600 that Rows x Columns"),
    "bits-8-on-16-bit-data": one_slice(
        _set(BitsAllocated=8, BitsStored=8, HighBit=7), "more than the 1600"
    ),
    "bits-32-on-16-bit-data": one_slice(
        _set(BitsAllocated=32, BitsStored=32, HighBit=31), "6400 expected"
    ),
    "bits-stored-above-allocated": one_slice(
        _set(BitsStored=20), "BitsStored is above BitsAllocated in 1 of 4"
    ),
    "colour-samples": one_slice(_set(SamplesPerPixel=3), "9600 expected"),
    "photometric-palette": every_slice(
        _set(PhotometricInterpretation="PALETTE COLOR"), "PhotometricInterpretation is not"
    ),
    "photometric-rgb-one": one_slice(
        _set(PhotometricInterpretation="RGB"), "PhotometricInterpretation is not"
    ),
    "truncated-slice": truncated_slice,
    "undecodable-jpeg2000": one_slice(_undecodable_jpeg2000, "cannot decode pixel data"),
    # geometry values
    "pixel-spacing-zero": every_slice(
        _set(PixelSpacing=[0, 0]), "PixelSpacing is not 2 positive finite numbers in 4 of 4"
    ),
    "pixel-spacing-negative": every_slice(
        _set(PixelSpacing=[-7, 7]), "PixelSpacing is not 2 positive finite numbers"
    ),
    "pixel-spacing-one-value": every_slice(
        _set(PixelSpacing=[7]), "PixelSpacing is not 2 positive finite numbers"
    ),
    "position-two-values-one": one_slice(
        _set(ImagePositionPatient=[1, 2]), "ImagePositionPatient is not 3 finite numbers in 1 of 4"
    ),
    "position-two-values-all": every_slice(
        _set(ImagePositionPatient=[1, 2]), "ImagePositionPatient is not 3 finite numbers in 4 of 4"
    ),
    "position-nan": one_slice(
        _set(ImagePositionPatient=["nan", "0", "0"]), "ImagePositionPatient is not 3 finite"
    ),
    "rows-zero": one_slice(_set(Rows=0), "Rows or Columns is 0 in 1 of 4"),
    "position-missing-one": one_slice(
        _delete("ImagePositionPatient"), "missing ImagePositionPatient"
    ),
    "orientation-five-values": one_slice(
        _set(ImageOrientationPatient=[1, 0, 0, 0, 1]), "ImageOrientationPatient is not 6"
    ),
    "orientation-not-unit": every_slice(
        _set(ImageOrientationPatient=[2, 0, 0, 0, 2, 0]), "are not unit vectors"
    ),
    "pixel-spacing-in-wrong-units": every_slice(
        _set(PixelSpacing=[7e6, 7e6]), "is above 100 mm, which no CT has"
    ),
    "position-not-a-number-last": raw_value(
        "ImagePositionPatient", "a\\b\\c", "IM0004.dcm", "ImagePositionPatient is not 3 finite"
    ),
    "pixel-spacing-not-a-number": raw_value(
        "PixelSpacing", "a\\b", "IM0001.dcm", "PixelSpacing is not 2 positive finite numbers"
    ),
    "damaged-header-beside-series": damaged_header,
    "newline-in-file-name": newline_in_name,
    "pipe-as-input": pipe_input,
    "orientation-not-orthogonal": every_slice(
        _set(ImageOrientationPatient=[1, 0, 0, 0.3, 1, 0]), "are not orthogonal"
    ),
    "gap": gap,
    "duplicate": duplicate,
    "modality-mr": every_slice(_set(Modality="MR"), "modality MR is not allowed"),
    # memory bombs
    "rle-declares-4-gigapixels": dicom_file(_rle_huge, "above the limit of"),
    "native-declares-huge": dicom_file(_set(Rows=60000, Columns=60000), "pixel data holds 3200"),
    "nifti-gzip-bomb": gzip_bomb,
    "nifti-declares-more-than-data": header_declares_more,
    "nrrd-declares-huge": nrrd_huge,
    "limit-from-flag": over_limit_flag,
    "dicom-limit-from-flag": dicom_over_limit_flag,
    # values and geometry of NIfTI volumes
    "nifti-nan": nifti_values(_nan_share, "voxels (0.62 %) are NaN or infinite"),
    "nifti-inf": nifti_values(_inf_one, "1 of 6400 voxels"),
    "nifti-mr-like": nifti_values(_mr_like, "does not look like CT in Hounsfield units"),
    "nifti-constant": nifti_values(lambda hu: hu * 0 - 1000, "every voxel is -1000 HU"),
    "nifti-air-only": nifti_values(lambda hu: hu * 0.001 - 1024, "nothing but air"),
    "nifti-voxels-in-micrometres": nifti_affine(_metres, "is above 100 mm, which no CT has"),
    "nifti-without-voxel-size": nifti_without_voxel_size,
    "nifti-beyond-range": nifti_values(lambda hu: hu * 1e4, "beyond any CT scanner's range"),
    "nifti-zero-affine": nifti_affine(lambda a: a * 0, "the affine is singular"),
    "nifti-collinear-affine": nifti_affine(_collinear, "the affine is singular"),
    "nifti-nan-affine": nifti_affine(_nan_affine, "NaN or infinite values"),
    "nifti-4d": nifti_array(lambda hu: np.stack([hu] * 3, axis=-1), "holds a 4-D array"),
    "nifti-1d": nifti_array(lambda hu: hu.reshape(-1), "holds a 1-D array"),
    "nifti-complex": nifti_array(
        lambda hu: hu.astype(np.complex64), "are not numbers of one channel"
    ),
    "nifti-tiny": tiny_volume,
    "nifti-negative-dimension": negative_dimension,
    "nifti-scaled-to-inf": scaled_to_inf,
    "nifti-rgb": rgb_nifti,
    "nifti-empty-dimension": empty_dimension,
    # damaged files
    "nifti-truncated": truncated_nii,
    "nifti-gz-truncated": truncated_gz,
    "nifti-not-gzip": not_gzip,
    "nifti-zero-bytes": empty_nifti,
    "nrrd-2d": nrrd_2d,
    "nrrd-truncated": nrrd_truncated,
    "random-bytes": random_bytes_file,
    "png": png_file,
    "zero-byte-dicom-name": zero_byte_file,
    "empty-folder": empty_folder,
    "folder-without-dicom": text_folder,
    "missing": missing_path,
}
