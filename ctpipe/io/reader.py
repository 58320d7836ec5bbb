"""The one way to read a study, for ctpipe's own code and for MONAI's ``LoadImage``.

:func:`read_study` reads any input ctpipe takes (a DICOM series folder, file, list of
files or scanned series; NIfTI; NRRD; MetaImage) into a :class:`~ctpipe.io.dicom_volume.
CTVolume`: HU, the exact affine, and for DICOM the series with its headers. The workflow,
the demo, the PACS node and every command call it; :func:`load_ct` gives the same volume
as a MONAI ``MetaTensor`` (HU, RAS affine, the DICOM identity in ``meta``). It checks what
the numbers depend on (HU, finite values, geometry, size) before returning.

MONAI's own DICOM readers either need ITK or take slices in the order given and trust one
header for spacing. :class:`CTSeriesReader` plugs :func:`read_study` into MONAI's reader
mechanism instead: series found by UID (or by shared tags when UIDs are empty), slices
sorted along the normal, gaps and tilts refused with the gap named, HU from each slice's
rescale, and an exact RAS affine; NIfTI through nibabel (:mod:`ctpipe.io.nifti`), NRRD
and MetaImage through SimpleITK (:mod:`ctpipe.io.image_file`).

In MONAI chains (:func:`ct_loader_dict`), which read label maps too, the decoded values
are not checked (the header and size checks still apply).

Example:
    >>> from monai.transforms import LoadImaged
    >>> load = LoadImaged(keys="image", reader=CTSeriesReader(), ensure_channel_first=True)
    >>> sample = load({"image": "/data/CT/series1"})  # doctest: +SKIP
    >>> sample["image"].shape, sample["image"].affine.shape  # doctest: +SKIP
    (torch.Size([1, 512, 512, 134]), torch.Size([4, 4]))
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import ImageReader
from monai.utils import ensure_tuple

from ctpipe.errors import CTPipeError, InputError
from ctpipe.io.dicom_volume import CTVolume, read_dicom_volume
from ctpipe.io.discovery import NOT_REGULAR, DicomSeries
from ctpipe.io.image_file import is_image_file, read_image_file
from ctpipe.io.nifti import NIFTI_SUFFIXES
from ctpipe.io.validate import validate_ct_array

StudySource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | DicomSeries

#: File suffixes taken as DICOM (besides folders and files without a suffix).
DICOM_SUFFIXES = (".dcm", ".ima", ".dicom", ".dic")


def is_dicom_source(path: str | os.PathLike[str]) -> bool:
    """True for a folder, a DICOM suffix, or a suffix-less file (common for DICOM).

    Example:
        >>> is_dicom_source("scan.nii.gz"), is_dicom_source("IM0001.dcm")
        (False, True)
    """
    path = Path(path)
    if path.is_dir():
        return True
    suffix = path.suffix.lower()
    return suffix in DICOM_SUFFIXES or (suffix == "" or suffix[1:].isdigit())


def read_study(
    source: StudySource,
    *,
    series_uid: str | None = None,
    modalities: Sequence[str] | None = ("CT",),
    allow_irregular: bool = False,
    allow_non_hu: bool = False,
    min_slice_pixels: int = 1,
    check_values: bool = True,
) -> CTVolume:
    """Read and check one study's volume, whatever form it comes in.

    Every command reads its input here, so every command refuses the same bad inputs with
    the same one-line message naming the file:

    1. *Before decoding* (the readers): a missing path; a file that is not a readable
       DICOM, NIfTI, NRRD or MetaImage; a declared size above the voxel limit
       (:mod:`ctpipe.io.limits`); a NIfTI holding less data than its header declares; a
       DICOM series with invalid headers (:mod:`ctpipe.io.header_checks`: HU rescale,
       geometry values, pixel layout) or an irregular slice grid (:mod:`ctpipe.io.geometry`).
    2. *After decoding* (:mod:`ctpipe.io.validate`, unless ``check_values`` is False): a
       volume that is not 3-D or is too small, a singular affine, NaN or infinite voxels,
       values that are not CT in Hounsfield units.

    Anything else a reader raises on a damaged file becomes an
    :class:`~ctpipe.errors.InputError` naming the file, never a library traceback.

    Args:
        source: A DICOM folder (scanned recursively), file, list of files of one series,
            or a scanned :class:`~ctpipe.io.discovery.DicomSeries`; or a NIfTI, NRRD or
            MetaImage file (values taken as HU).
        series_uid: Which series to read when a DICOM folder holds several.
        modalities: DICOM modalities that may be read (CT by default); None allows any.
            The HU check applies to CT series and to NIfTI, NRRD and MetaImage volumes.
        allow_irregular: Read DICOM series with gaps, uneven spacing or a tilted gantry
            (with a warning).
        allow_non_hu: Read values that are not CT in Hounsfield units anyway: a missing or
            invalid DICOM rescale (with a warning), a volume without air
            (``--allow-non-hu``).
        min_slice_pixels: The smallest slice size (pixels along i and j) accepted.
        check_values: Check the decoded values and affine (step 2). MONAI chains, which
            read label maps too, turn it off.

    Returns:
        The :class:`~ctpipe.io.dicom_volume.CTVolume` (float32; ``series`` holds the DICOM
        headers).

    Raises:
        InputError: The source cannot be read or its values cannot be trusted (one line
            naming the file and the problem).

    Example:
        >>> read_study("/no/such/ct.nii.gz")
        Traceback (most recent call last):
        ...
        ctpipe.errors.InputError: /no/such/ct.nii.gz: no such file or folder
    """
    name = _source_name(source)
    try:
        volume = _read(source, series_uid, modalities, allow_irregular, allow_non_hu)
    except CTPipeError:
        raise
    except MemoryError:
        raise InputError(
            name, "not enough memory to read it (is it larger than this machine can hold?)"
        ) from None
    except OSError as err:
        where = err.filename if err.filename is not None else name
        raise InputError(where, f"cannot be read: {err.strerror or err}") from None
    except Exception as err:  # readers raise many types on damaged files
        text = str(err).strip().splitlines()
        detail = f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
        raise InputError(name, f"cannot be read as a CT volume ({detail})") from None
    if check_values:
        modality = str(volume.meta.get("Modality") or "CT")
        validate_ct_array(
            volume.hu,
            volume.affine_lps,
            name,
            allow_non_hu=allow_non_hu or modality != "CT",
            min_slice_pixels=min_slice_pixels,
        )
    return volume


def _source_name(source: StudySource) -> Path:
    """The path an error about ``source`` names (a series' folder, the first file)."""
    if isinstance(source, DicomSeries):
        return source.folder
    names = ensure_tuple(source)
    return Path(names[0]) if names else Path(".")


def _read(
    source: StudySource,
    series_uid: str | None,
    modalities: Sequence[str] | None,
    allow_irregular: bool,
    allow_non_hu: bool,
) -> CTVolume:
    options = {"modalities": modalities, "allow_irregular": allow_irregular}
    if isinstance(source, DicomSeries):
        return read_dicom_volume(source, allow_non_hu=allow_non_hu, **options)
    names = [Path(name) for name in ensure_tuple(source)]
    if not names:
        raise InputError(".", "no input given")
    if len(names) == 1:
        path = names[0]
        if not path.exists():
            raise InputError(path, "no such file or folder")
        if not (path.is_file() or path.is_dir()):
            raise InputError(path, NOT_REGULAR)
        if path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES):
            return CTVolume.from_nifti(path)
        if path.is_file() and is_image_file(path):
            return read_image_file(path)
        if path.is_file():
            _check_dicom_file(path)
    volume = read_dicom_volume(
        names[0] if len(names) == 1 else names,
        series_uid=series_uid,
        allow_non_hu=allow_non_hu,
        **options,
    )
    volume.hu = np.asarray(volume.hu, dtype=np.float32)
    return volume


def _check_dicom_file(path: Path) -> None:
    """A single file that is not NIfTI or NRRD must be DICOM: say so in one line."""
    from ctpipe.errors import NotDicomError
    from ctpipe.io.dicom_header import read_slice_header

    try:
        read_slice_header(path)
    except NotDicomError:
        raise InputError(
            path,
            "cannot be read as a CT volume (a DICOM series or NIfTI/NRRD): not a DICOM, "
            "NIfTI (.nii, .nii.gz), NRRD or MetaImage file",
        ) from None


class CTSeriesReader(ImageReader):
    """Read a study for MONAI (:func:`read_study`: DICOM, NIfTI, NRRD, MetaImage).

    Args:
        series_uid: SeriesInstanceUID to read when a folder holds several series.
        modalities: Modalities allowed (CT by default); None allows any.
        allow_irregular: Read series with gaps or a tilted gantry (with a warning).
        allow_non_hu: Read CT series whose HU rescale is missing or invalid (warning).

    Example:
        >>> from monai.transforms import LoadImage
        >>> load = LoadImage(reader=CTSeriesReader(), image_only=True)
        >>> image = load("/data/CT")  # doctest: +SKIP
    """

    def __init__(
        self,
        series_uid: str | None = None,
        modalities: Sequence[str] | None = ("CT",),
        allow_irregular: bool = False,
        allow_non_hu: bool = False,
    ) -> None:
        super().__init__()
        self.series_uid = series_uid
        self.modalities = None if modalities is None else tuple(modalities)
        self.allow_irregular = allow_irregular
        self.allow_non_hu = allow_non_hu

    def verify_suffix(
        self, filename: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]
    ) -> bool:
        """True when every name is a folder or looks like DICOM, NIfTI, NRRD or MetaImage."""
        return all(
            is_dicom_source(name) or is_image_file(name) or str(name).endswith(NIFTI_SUFFIXES)
            for name in ensure_tuple(filename)
        )

    def read(
        self, data: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], **kwargs: Any
    ) -> CTVolume:
        """Read one study: a folder, a file, or the files of a single series.

        Label maps pass through the same reader, so only the headers and the declared
        size are checked, not the values.
        """
        return read_study(
            data,
            series_uid=kwargs.get("series_uid", self.series_uid),
            modalities=self.modalities,
            allow_irregular=self.allow_irregular,
            allow_non_hu=self.allow_non_hu,
            check_values=False,
        )

    def get_data(self, img: CTVolume) -> tuple[np.ndarray, dict]:
        """Return the HU array and MONAI metadata (RAS affine, spatial shape, DICOM identity)."""
        return img.hu, monai_meta(img)


def monai_meta(volume: CTVolume) -> dict[str, Any]:
    """MONAI metadata for a :class:`CTVolume` (RAS affine, no channel dimension).

    Example:
        >>> monai_meta(volume)["space"]  # doctest: +SKIP
        'RAS'
    """
    from monai.utils import MetaKeys, SpaceKeys

    meta: dict[str, Any] = dict(volume.meta)
    affine = volume.affine_ras
    meta[MetaKeys.AFFINE] = affine
    meta[MetaKeys.ORIGINAL_AFFINE] = affine.copy()
    meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(volume.hu.shape)
    meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = "no_channel"
    meta[MetaKeys.SPACE] = SpaceKeys.RAS
    meta["pixdim"] = np.asarray([1.0, *volume.spacing])
    return meta


def ct_loader(
    *,
    series_uid: str | None = None,
    modalities: Sequence[str] | None = ("CT",),
    allow_irregular: bool = False,
    ensure_channel_first: bool = False,
):
    """A MONAI ``LoadImage`` that reads every input through :func:`read_study`.

    Args:
        series_uid: SeriesInstanceUID to pick from folders holding several series.
        modalities: Modalities allowed for DICOM (CT by default); None allows any.
        allow_irregular: Read DICOM series with gaps or tilt (with a warning).
        ensure_channel_first: Add a leading channel dimension.

    Returns:
        A ``monai.transforms.LoadImage`` returning MetaTensors.

    Example:
        >>> image = ct_loader()("/data/CT/series1")  # doctest: +SKIP
    """
    from monai.transforms import LoadImage

    reader = CTSeriesReader(series_uid, modalities, allow_irregular)
    with quiet_optional_readers():
        loader = LoadImage(
            reader=reader, image_only=True, ensure_channel_first=ensure_channel_first
        )
    return _select_by_suffix(loader)


def ct_loader_dict(keys: str | Sequence[str], **kwargs: Any):
    """Dictionary form of :func:`ct_loader` for MONAI ``Compose`` chains.

    Example:
        >>> load = ct_loader_dict(["image", "label"])
    """
    from monai.transforms import LoadImaged

    ensure_channel_first = kwargs.pop("ensure_channel_first", False)
    with quiet_optional_readers():
        loader = LoadImaged(
            keys=keys,
            reader=CTSeriesReader(**kwargs),
            image_only=True,
            ensure_channel_first=ensure_channel_first,
        )
    _select_by_suffix(loader._loader)
    return loader


def _select_by_suffix(loader):
    """Make a ``LoadImage`` pick its reader by suffix, with ours first, and never retry.

    Given a reader, MONAI's ``LoadImage`` tries every registered reader in turn and moves
    on when one raises, so a DICOM series that ctpipe refuses (a gap, a tilt) would be
    read by the next reader with the wrong geometry. With ``auto_select`` the first reader
    whose ``verify_suffix`` accepts the path reads it, and its error reaches the caller.
    """
    loader.auto_select = True
    return loader


@contextlib.contextmanager
def quiet_optional_readers() -> Iterator[None]:
    """Silence MONAI's notices about optional GPU decoders (nvImageCodec) being absent.

    ``LoadImage`` instantiates every reader MONAI knows; on machines without
    nvImageCodec one of them logs and warns that it falls back to pydicom's decoders,
    which is exactly what ctpipe wants, on every construction. Both the log record and
    the warning are silenced: a command's log handler would print the record as a
    ``ctpipe:`` line of its own.

    Example:
        >>> with quiet_optional_readers():
        ...     logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").warning("absent")
    """
    logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            yield
    finally:
        logger.setLevel(level)


def load_ct(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    modalities: Sequence[str] | None = ("CT",),
    allow_irregular: bool = False,
    allow_non_hu: bool = False,
    min_slice_pixels: int = 1,
    ensure_channel_first: bool = False,
):
    """Load a CT volume (DICOM series folder/file, NIfTI, NRRD, MetaImage) as a MetaTensor.

    The volume is read and checked by :func:`read_study` (the loader every command uses),
    then wrapped with MONAI metadata.

    Args:
        path: What to read.
        series_uid: SeriesInstanceUID to pick from folders holding several series.
        modalities: Modalities allowed for DICOM (CT by default); None allows any.
        allow_irregular: Read DICOM series with gaps or tilt (with a warning).
        allow_non_hu: Read values that are not CT in Hounsfield units anyway.
        min_slice_pixels: The smallest slice size accepted (pixels along i and j).
        ensure_channel_first: Add a leading channel dimension.

    Returns:
        A MetaTensor indexed (i, j, k) with ``.affine`` in RAS and HU values.

    Example:
        >>> load_ct("/data/CT/series1").meta["Modality"]  # doctest: +SKIP
        'CT'

    Raises:
        InputError: ``path`` does not exist, or cannot be read as CT (names it).
    """
    import torch
    from monai.data import MetaTensor

    volume = read_study(
        path,
        series_uid=series_uid,
        modalities=modalities,
        allow_irregular=allow_irregular,
        allow_non_hu=allow_non_hu,
        min_slice_pixels=min_slice_pixels,
    )
    meta = monai_meta(volume)
    meta.pop("affine")  # given as the MetaTensor's affine below
    meta["filename_or_obj"] = str(path)
    data = torch.from_numpy(np.ascontiguousarray(volume.hu, dtype=np.float32))
    if ensure_channel_first:
        data = data[None]
    affine = torch.as_tensor(volume.affine_ras, dtype=torch.float64)
    return MetaTensor(data, affine=affine, meta=meta)
