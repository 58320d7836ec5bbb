"""Pair quarter-dose and full-dose slices of the AAPM Low Dose CT Grand Challenge layout.

The 2016 NIH-AAPM-Mayo Low Dose CT Grand Challenge ships one folder per patient, and in it
one folder per dose level, slice thickness and (optionally) reconstruction kernel::

    <root>/L096/full_3mm_D45/L096_FD_D45_z-00109.0.IMA
    <root>/L096/quarter_3mm_D45/L096_QD_D45_z-00109.0.IMA

:func:`find_aapm_pairs` reads only the DICOM headers, pairs each quarter-dose slice with the
full-dose slice at the same position along the slice normal (never by file name) and returns
a MONAI datalist: ``"image"`` is the low-dose input, ``"label"`` the normal-dose target, the
default keys of MONAI's ``SupervisedTrainer``. :func:`split_by_patient` splits that list so
that no patient is in two splits, and :func:`write_datalist` saves the splits as JSON that
``monai.data.load_decathlon_datalist`` reads. Given a data manifest, :func:`find_aapm_pairs`
also checks the size and sha256 of every paired file against it.

Example:
    >>> pairs = find_aapm_pairs("../shared/data/aapm_ldct_pairs", kernel="D45")  # doctest: +SKIP
    >>> pairs[0]["image"], pairs[0]["label"], pairs[0]["z"]  # doctest: +SKIP
    ('.../L096/quarter_3mm_D45/L096_QD_D45_z-00611.0.IMA', '.../L096/full_3mm_D45/...', -611.0)
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ctpipe.errors import CorruptDicomError, InputError, NotDicomError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.dicom_header import read_slice_header
from ctpipe.io.geometry import orientation_problem, slice_normal
from ctpipe.io.manifest import Manifest, load_manifest, verify_files

__all__ = ["LAYOUT", "find_aapm_pairs", "split_by_patient", "write_datalist"]

LAYOUT = (
    "<root>/<patient>/{full,quarter}_<thickness>[_<kernel>]/<DICOM files>, "
    "e.g. <root>/L096/quarter_3mm_D45/L096_QD_D45_z-00109.0.IMA"
)
"""The folder layout :func:`find_aapm_pairs` expects, as shown in its error messages."""

_SERIES_DIR = re.compile(
    r"(?P<dose>full|quarter)_(?P<thickness>\d+(?:\.\d+)?mm)(?:_(?P<kernel>[A-Za-z0-9]+))?",
    re.IGNORECASE,
)
_THICKNESS = re.compile(r"\d+(?:\.\d+)?mm", re.IGNORECASE)
_MAX_LISTED = 20
_PARALLEL_TOLERANCE = 1e-3

_GroupKey = tuple[str, str, str]  # (patient, thickness, kernel)


@dataclass(frozen=True)
class _SeriesDir:
    """One ``{full,quarter}_<thickness>[_<kernel>]`` folder of one patient."""

    path: Path
    patient: str
    dose: str
    thickness: str
    kernel: str


@dataclass(frozen=True)
class _Slice:
    """Header facts of one slice needed for pairing."""

    path: Path
    z: float
    normal: tuple[float, float, float]
    series_uid: str
    patient_id: str


def find_aapm_pairs(
    root: str | PathLike[str],
    *,
    thickness: str | None = None,
    kernel: str | None = None,
    patients: Sequence[str] | None = None,
    tolerance_mm: float = 0.01,
    strict: bool = False,
    manifest: str | PathLike[str] | Manifest | None = None,
) -> list[dict[str, Any]]:
    """Pair quarter-dose and full-dose slices of an AAPM Low Dose CT tree by slice position.

    Folders that do not follow :data:`LAYOUT` are ignored; files whose name starts with a dot
    are ignored; other files that are not CT image slices (not DICOM, another modality, no
    position) are skipped with one warning naming them. Slices are paired within one patient,
    thickness and kernel by their position along the slice normal
    (``ImagePositionPatient · (row x column direction)``), so file names do not matter.
    With a ``manifest``, every file of the returned pairs is checked against it (size and
    sha256) before the pairs are returned.

    Args:
        root: Folder holding one folder per patient.
        thickness: Keep only this slice thickness, e.g. ``"3mm"`` (``"3.0mm"`` is the same);
            ``None`` keeps all.
        kernel: Keep only this kernel, e.g. ``"D45"`` (case-insensitive); ``""`` keeps only
            folders without a kernel suffix; ``None`` keeps all.
        patients: Keep only these patient folders, e.g. ``["L096"]``; ``None`` keeps all.
        tolerance_mm: Largest distance along the normal at which two slices are at the same
            position.
        strict: Raise instead of warning when a slice or a folder has no partner.
        manifest: A data manifest (or its YAML file) listing the files under ``root``,
            e.g. ``data_manifests/aapm_ldct_pairs_shared.yaml``; ``None`` skips the check.

    Returns:
        One dict per pair, sorted by patient, thickness, kernel and z: ``"image"`` (the
        quarter-dose file), ``"label"`` (the full-dose file), ``"patient"``, ``"thickness"``,
        ``"kernel"`` (``""`` when the folder has none) and ``"z"`` (the full-dose slice
        position along the normal, in mm).

    Raises:
        InputError: If ``root`` is missing or holds no folder of the layout (after the
            filters), if a requested patient is absent, if two slices of one folder share a
            position, if the slices of a pair are not parallel, with ``strict`` if a slice
            has no partner, or, with ``manifest``, if a file of a pair is missing from the
            manifest or differs from it (the message names the files).
        ManifestError: If ``manifest`` cannot be read or lists no files.
        ValueError: If ``thickness`` or ``tolerance_mm`` is malformed.

    Example:
        >>> pairs = find_aapm_pairs("data/aapm", thickness="3mm", kernel="D45")  # doctest: +SKIP
        >>> {k: pairs[0][k] for k in ("patient", "kernel", "z")}  # doctest: +SKIP
        {'patient': 'L096', 'kernel': 'D45', 'z': -611.0}
    """
    _check_tolerance(tolerance_mm)
    root = _check_root(root)
    dirs = _select(_find_series_dirs(root), root, thickness, kernel, patients)
    notes: list[str] = []
    skipped: list[str] = []
    pairs: list[dict[str, Any]] = []
    for key, by_dose in sorted(_group(dirs).items(), key=lambda item: _sort_key(item[0])):
        pairs.extend(_pair_group(root, key, by_dose, tolerance_mm, strict, notes, skipped))
    if skipped:
        notes.insert(0, _skipped_message(root, skipped))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    if manifest is not None:
        _verify(pairs, root, manifest)
    return pairs  # groups in sorted order, each group's pairs by ascending z


def split_by_patient(
    datalist: Sequence[Mapping[str, Any]],
    splits: Mapping[str, Sequence[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Split a datalist by its ``"patient"`` key so that no patient is in two splits.

    Args:
        datalist: Entries with a ``"patient"`` key, e.g. from :func:`find_aapm_pairs`.
        splits: Split name to the patients it holds, e.g.
            ``{"training": ["L096", "L143"], "test": ["L192"]}``.

    Returns:
        Split name to its entries (copies, in datalist order), in the order of ``splits``.
        A listed patient absent from the datalist gives an empty share and a warning.

    Raises:
        ValueError: If a patient is listed in two splits, if a patient of the datalist is in
            no split, if an entry has no ``"patient"`` or if a split's patients are a string.

    Example:
        >>> data = [{"image": "a", "patient": "L096"}, {"image": "b", "patient": "L192"}]
        >>> parts = split_by_patient(data, {"training": ["L096"], "test": ["L192"]})
        >>> [e["image"] for e in parts["test"]]
        ['b']
    """
    owner = _patient_owners(splits)
    result: dict[str, list[dict[str, Any]]] = {name: [] for name in splits}
    unassigned: set[str] = set()
    for index, entry in enumerate(datalist):
        if "patient" not in entry:
            raise ValueError(f"datalist entry {index} has no 'patient' key: {dict(entry)!r}")
        patient = str(entry["patient"])
        if patient in owner:
            result[owner[patient]].append(dict(entry))
        else:
            unassigned.add(patient)
    if unassigned:
        raise ValueError(
            f"every patient of the datalist must be in one split; patients in no split: "
            f"{sorted(unassigned)} (splits: {sorted(splits)})"
        )
    absent = sorted(set(owner) - {str(e["patient"]) for e in datalist})
    if absent:
        warnings.warn(
            f"patients listed in splits but absent from the datalist: {absent}", stacklevel=2
        )
    return result


def write_datalist(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | PathLike[str],
) -> Path:
    """Write datalists as MONAI decathlon-style JSON, atomically (temporary file + rename).

    Args:
        splits: Split name to its entries, e.g. ``{"training": pairs}`` or the result of
            :func:`split_by_patient`; each entry must be JSON-serialisable.
        path: The JSON file to write; its folder is created if missing.

    Returns:
        The path written.

    Raises:
        TypeError: If ``splits`` is not a mapping of split names to lists of dicts.

    Example:
        >>> import tempfile, monai.data
        >>> out = Path(tempfile.mkdtemp()) / "aapm.json"
        >>> _ = write_datalist({"training": [{"image": "/d/q.IMA", "label": "/d/f.IMA"}]}, out)
        >>> monai.data.load_decathlon_datalist(out, data_list_key="training")[0]["label"]
        '/d/f.IMA'
    """
    _check_splits(splits)
    path = Path(path)
    text = json.dumps(
        {name: [dict(e) for e in entries] for name, entries in splits.items()}, indent=2
    )
    with atomic_path(path) as temp:
        temp.write_text(text + "\n", encoding="utf-8")
    return path


# --- manifest ------------------------------------------------------------------------------


def _verify(
    pairs: list[dict[str, Any]], root: Path, manifest: str | PathLike[str] | Manifest
) -> None:
    """Raise ``InputError`` naming every file of ``pairs`` that differs from ``manifest``."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    paths = [pair[key] for pair in pairs for key in ("image", "label")]
    verify_files(manifest, root, paths).raise_if_problems()


# --- folders -------------------------------------------------------------------------------


def _check_tolerance(tolerance_mm: float) -> None:
    """Reject a negative or non-finite pairing tolerance."""
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm!r}")


def _check_root(root: str | PathLike[str]) -> Path:
    """Return ``root`` as an absolute path, or raise if it is not a non-empty folder."""
    path = Path(root).expanduser().absolute()
    if not path.exists():
        raise InputError(path, f"AAPM root folder does not exist; expected layout {LAYOUT}")
    if not path.is_dir():
        raise InputError(path, f"AAPM root is not a folder; expected layout {LAYOUT}")
    if not any(path.iterdir()):
        raise InputError(path, f"AAPM root folder is empty; expected layout {LAYOUT}")
    return path


def _find_series_dirs(root: Path) -> list[_SeriesDir]:
    """Find every ``<root>/<patient>/{full,quarter}_<thickness>[_<kernel>]`` folder."""
    found = []
    for patient in _visible_dirs(root):
        for folder in _visible_dirs(patient):
            match = _SERIES_DIR.fullmatch(folder.name)
            if match:
                found.append(
                    _SeriesDir(
                        path=folder,
                        patient=patient.name,
                        dose=match["dose"].lower(),
                        thickness=match["thickness"].lower(),
                        kernel=match["kernel"] or "",
                    )
                )
    if not found:
        raise InputError(root, _no_layout_message(root))
    return found


def _visible_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` whose name does not start with a dot, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _no_layout_message(root: Path) -> str:
    """Explain that nothing under ``root`` follows the layout, with a hint when possible."""
    message = f"no folder follows the AAPM layout {LAYOUT}"
    if any(_SERIES_DIR.fullmatch(p.name) for p in _visible_dirs(root)):
        message += "; this looks like one patient's folder, pass its parent folder as root"
    elif _SERIES_DIR.fullmatch(root.name):
        message += "; this looks like one series folder, pass the folder two levels up as root"
    return message


def _select(
    dirs: list[_SeriesDir],
    root: Path,
    thickness: str | None,
    kernel: str | None,
    patients: Sequence[str] | None,
) -> list[_SeriesDir]:
    """Apply the thickness, kernel and patient filters, raising if nothing is left."""
    if patients is not None:
        wanted = {patients} if isinstance(patients, str) else set(patients)
        missing = sorted(wanted - {d.patient for d in dirs})
        if missing:
            raise InputError(
                root,
                f"patients {missing} not found; patients with AAPM folders: "
                f"{sorted({d.patient for d in dirs})}",
            )
        dirs = [d for d in dirs if d.patient in wanted]
    kept = [d for d in dirs if _thickness_ok(d, thickness) and _kernel_ok(d, kernel)]
    if not kept:
        found = sorted({f"{d.thickness}_{d.kernel}" if d.kernel else d.thickness for d in dirs})
        raise InputError(
            root,
            f"no AAPM folder with thickness={thickness!r} and kernel={kernel!r}; "
            f"found {found} (thickness_kernel)",
        )
    return kept


def _thickness_ok(folder: _SeriesDir, thickness: str | None) -> bool:
    """Whether ``folder`` has the requested slice thickness (``None`` accepts all)."""
    if thickness is None:
        return True
    if not _THICKNESS.fullmatch(thickness):
        raise ValueError(
            f"thickness must be a number followed by 'mm', e.g. '3mm' or '1.5mm', got {thickness!r}"
        )
    return float(folder.thickness[:-2]) == float(thickness[:-2])


def _kernel_ok(folder: _SeriesDir, kernel: str | None) -> bool:
    """Whether ``folder`` has the requested kernel (``None`` accepts all)."""
    return kernel is None or folder.kernel.lower() == kernel.lower()


def _group(dirs: Iterable[_SeriesDir]) -> dict[_GroupKey, dict[str, _SeriesDir]]:
    """Group folders by (patient, thickness, kernel), then by dose level."""
    groups: dict[_GroupKey, dict[str, _SeriesDir]] = {}
    for folder in dirs:
        by_dose = groups.setdefault((folder.patient, folder.thickness, folder.kernel), {})
        if folder.dose in by_dose:
            raise InputError(
                folder.path.parent,
                f"two folders for one dose level, thickness and kernel: "
                f"{by_dose[folder.dose].path.name} and {folder.path.name}",
            )
        by_dose[folder.dose] = folder
    return groups


def _sort_key(key: _GroupKey) -> tuple[str, float, str]:
    """Sort key of a (patient, thickness, kernel) group: thickness by its value."""
    patient, thickness, kernel = key
    return patient, float(thickness[:-2]), kernel


# --- pairing -------------------------------------------------------------------------------


def _pair_group(
    root: Path,
    key: _GroupKey,
    by_dose: dict[str, _SeriesDir],
    tolerance_mm: float,
    strict: bool,
    notes: list[str],
    skipped: list[str],
) -> list[dict[str, Any]]:
    """Pair the quarter- and full-dose folders of one patient, thickness and kernel."""
    patient, thickness, kernel = key
    if len(by_dose) == 1:
        (lone,) = by_dose.values()
        other = "full" if lone.dose == "quarter" else "quarter"
        problem = (
            f"{lone.path.name} has no {other}_{lone.path.name.split('_', 1)[1]} partner folder"
        )
        if strict:
            raise InputError(lone.path.parent, problem)
        notes.append(f"{lone.path.parent}: {problem}; its slices are left out")
        return []
    quarter = _read_folder(by_dose["quarter"].path, tolerance_mm, root, skipped)
    full = _read_folder(by_dose["full"].path, tolerance_mm, root, skipped)
    _check_parallel(quarter + full, root)
    _check_patient_ids(quarter + full, by_dose["full"].path.parent, notes)
    pairs, unpaired = _match(quarter, full, tolerance_mm)
    if unpaired:
        problem = _unpaired_message(root, unpaired, tolerance_mm)
        if strict:
            raise InputError(by_dose["full"].path.parent, problem)
        notes.append(f"{by_dose['full'].path.parent}: {problem}")
    return [
        {
            "image": str(q.path),
            "label": str(f.path),
            "patient": patient,
            "thickness": thickness,
            "kernel": kernel,
            "z": f.z,
        }
        for q, f in pairs
    ]


def _match(
    quarter: list[_Slice], full: list[_Slice], tolerance_mm: float
) -> tuple[list[tuple[_Slice, _Slice]], list[_Slice]]:
    """Match slices of two z-sorted, duplicate-free lists; return pairs and the unpaired."""
    pairs: list[tuple[_Slice, _Slice]] = []
    unpaired: list[_Slice] = []
    i = j = 0
    while i < len(quarter) and j < len(full):
        dz = quarter[i].z - full[j].z
        if abs(dz) <= tolerance_mm:
            pairs.append((quarter[i], full[j]))
            i, j = i + 1, j + 1
        elif dz < 0:
            unpaired.append(quarter[i])
            i += 1
        else:
            unpaired.append(full[j])
            j += 1
    unpaired.extend(quarter[i:] + full[j:])
    return pairs, sorted(unpaired, key=lambda s: s.z)


def _unpaired_message(root: Path, unpaired: list[_Slice], tolerance_mm: float) -> str:
    """Describe slices that have no partner, naming each file and its z."""
    listed = [f"{s.path.relative_to(root)} (z={s.z:g})" for s in unpaired]
    return (
        f"{len(unpaired)} slice(s) have no partner at the same position "
        f"(tolerance_mm={tolerance_mm:g}) and are left out: {_some(listed)}"
    )


def _check_parallel(slices: list[_Slice], root: Path) -> None:
    """Raise if the slices of a group do not share one slice normal."""
    if not slices:
        return
    first = slices[0]
    for other in slices[1:]:
        if (
            max(abs(a - b) for a, b in zip(first.normal, other.normal, strict=True))
            > _PARALLEL_TOLERANCE
        ):
            raise InputError(
                other.path,
                f"slice normal {_fmt(other.normal)} differs from {_fmt(first.normal)} of "
                f"{first.path.relative_to(root)}; slices can only be paired by position "
                f"when all ImageOrientationPatient agree",
            )


def _check_patient_ids(slices: list[_Slice], folder: Path, notes: list[str]) -> None:
    """Note when the full- and quarter-dose slices of one patient carry different PatientIDs."""
    ids = sorted({s.patient_id for s in slices if s.patient_id})
    if len(ids) > 1:
        notes.append(
            f"{folder}: slices carry different PatientIDs {ids}; pairs are made by folder, "
            f"check that this folder holds one patient"
        )


# --- headers -------------------------------------------------------------------------------


def _read_folder(folder: Path, tolerance_mm: float, root: Path, skipped: list[str]) -> list[_Slice]:
    """Read the slice headers under ``folder``, sorted by z; record skipped files."""
    slices = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        item = _read_slice(path)
        if isinstance(item, str):
            skipped.append(f"{path.relative_to(root)} ({item})")
        else:
            slices.append(item)
    slices.sort(key=lambda s: s.z)
    _check_duplicates(slices, folder, tolerance_mm)
    return slices


def _read_slice(path: Path) -> _Slice | str:
    """Read one slice's header, or return why the file is not a usable CT slice."""
    try:
        header = read_slice_header(path)
    except NotDicomError:
        return "not DICOM"
    except CorruptDicomError as error:
        return f"unreadable DICOM header: {error.problem}"
    except OSError as error:
        return f"cannot be opened: {error.strerror or error}"
    if header is None:
        return "DICOM without image data"
    if header.modality and header.modality.upper() != "CT":
        return f"Modality {header.modality!r}, not CT"
    if header.orientation is None or header.position is None:
        return "no valid ImagePositionPatient/ImageOrientationPatient"
    problem = orientation_problem(header.orientation)
    if problem:
        return problem
    normal = slice_normal(header.orientation)
    return _Slice(
        path=path,
        z=float(np.dot(header.position, normal)),
        normal=(float(normal[0]), float(normal[1]), float(normal[2])),
        series_uid=header.series_instance_uid,
        patient_id=header.patient_id,
    )


def _check_duplicates(slices: list[_Slice], folder: Path, tolerance_mm: float) -> None:
    """Raise if two z-sorted slices of one folder lie at the same position."""
    for a, b in itertools.pairwise(slices):
        if b.z - a.z <= tolerance_mm:
            series = (
                ""
                if a.series_uid == b.series_uid
                else " (from different series: the folder mixes series)"
            )
            raise InputError(
                folder,
                f"{a.path.relative_to(folder)} and {b.path.relative_to(folder)} are at the same "
                f"slice position z={a.z:g} mm (within tolerance_mm={tolerance_mm:g}){series}; "
                f"each position may appear once per folder",
            )


# --- messages and validation ---------------------------------------------------------------


def _skipped_message(root: Path, skipped: list[str]) -> str:
    """One warning naming every file skipped because it is not a CT image slice."""
    return f"{root}: skipped {len(skipped)} file(s) that are not CT image slices: {_some(skipped)}"


def _some(items: list[str]) -> str:
    """Join up to ``_MAX_LISTED`` items, counting the rest."""
    text = ", ".join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return f"{text}, and {rest} more" if rest > 0 else text


def _fmt(vector: tuple[float, ...]) -> str:
    """Format a short vector with 4 decimals."""
    return "(" + ", ".join(f"{v:.4f}" for v in vector) + ")"


def _patient_owners(splits: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Map each patient to its split, raising if a patient is in two splits."""
    owner: dict[str, str] = {}
    for name, members in splits.items():
        if isinstance(members, str):
            raise ValueError(
                f"split {name!r} must be a list of patient ids, e.g. [{members!r}], "
                f"got the string {members!r}"
            )
        for patient in members:
            if patient in owner and owner[patient] != name:
                raise ValueError(
                    f"patient {patient!r} is in splits {owner[patient]!r} and {name!r}; "
                    f"a patient may be in one split only"
                )
            owner[patient] = name
    return owner


def _check_splits(splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Raise if ``splits`` is not a mapping of split names to lists of dicts."""
    if not isinstance(splits, Mapping):
        raise TypeError(
            f"splits must map split names to datalists, e.g. {{'training': pairs}}, "
            f"got {type(splits).__name__}"
        )
    for name, entries in splits.items():
        if isinstance(entries, (str, Mapping)) or not all(isinstance(e, Mapping) for e in entries):
            raise TypeError(f"split {name!r} must be a list of dicts, got {type(entries).__name__}")
