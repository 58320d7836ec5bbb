"""Which DICOM series of a study a workflow takes: typed, validated selection rules.

A PACS export of one study holds more than the images a workflow wants: localizers
(scouts), dose reports stored as secondary captures, several reconstructions (kernels,
slice thicknesses) and several contrast phases. :class:`SeriesSelection` holds rules on
the headers ctpipe already reads (:class:`~ctpipe.io.dicom_header.SliceHeader`), in the
spirit of MONAI Deploy's series selector but typed and checked when the workflow file
loads:

* ``modality``, ``sop_class`` (keywords such as ``CTImageStorage``, or UIDs);
* ``skip_image_type``: ImageType values that exclude a series (``LOCALIZER`` and
  ``DERIVED`` by default, so scouts and computed series such as ctpipe's own outputs are
  left out);
* ``slice_thickness_mm`` (``[min, max]``), ``min_slices`` / ``max_slices``;
* regular expressions (searched, case-insensitive) on ConvolutionKernel (``kernel``),
  SeriesDescription (``description``, ``skip_description``) and BodyPartExamined
  (``body_part``);
* ``per_study``: ``all`` keeps every matching series; ``one`` keeps one per study, chosen
  by ``prefer`` (``thinnest``, ``most_slices``, ...), readable series before series with
  problems, then the lowest SeriesNumber.

:meth:`SeriesSelection.decide` returns one :class:`SeriesChoice` per series, with every
reason a series was left out, so a batch can record what it skipped and why.

Example:
    >>> rules = SeriesSelection(slice_thickness_mm=(0.5, 3.0), per_study="one")
    >>> rules.prefer
    ('thinnest', 'most_slices')
    >>> SeriesSelection(kernel="B3[0-9")
    Traceback (most recent call last):
    ...
    ValueError: kernel must be a regular expression, got 'B3[0-9' \
(unterminated character set at position 2)
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ctpipe.errors import AmbiguousSeriesError, InputError
from ctpipe.io.discovery import DicomSeries

__all__ = ["PREFER_KEYS", "SeriesChoice", "SeriesSelection", "pick_series", "sop_class_name"]

#: Tie-break keys of ``prefer``, in words.
PREFER_KEYS = {
    "thinnest": "the thinnest slices",
    "thickest": "the thickest slices",
    "most_slices": "the most slices",
    "fewest_slices": "the fewest slices",
    "lowest_number": "the lowest SeriesNumber",
    "highest_number": "the highest SeriesNumber",
}

PreferKey = Literal[
    "thinnest", "thickest", "most_slices", "fewest_slices", "lowest_number", "highest_number"
]

#: Image SOP classes of CT volumes.
CT_SOP_CLASSES = (
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "LegacyConvertedEnhancedCTImageStorage",
)


@dataclass(frozen=True)
class SeriesChoice:
    """What the rules decided for one series.

    Args:
        series: The scanned series.
        selected: Whether the workflow takes it.
        reasons: Why it was left out (every rule it fails), or, for a series chosen
            among several of its study, how it was chosen.
    """

    series: DicomSeries
    selected: bool
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        """The reasons as one line."""
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class SeriesSelection:
    """Rules that pick the series a workflow runs on; valid once built.

    Args:
        modality: Modality values accepted.
        sop_class: SOP classes accepted: pydicom keywords (``CTImageStorage``) or UIDs.
        skip_image_type: A series whose ImageType holds any of these values is left out.
        slice_thickness_mm: ``[min, max]`` SliceThickness in mm, both included (the slice
            step when the tag is missing); ``None``: any.
        min_slices: Fewest slices (frames) a series may have.
        max_slices: Most slices a series may have (``None``: no limit).
        kernel: Regular expression the ConvolutionKernel must contain.
        description: Regular expression the SeriesDescription must contain.
        skip_description: A series whose SeriesDescription contains it is left out.
        body_part: Regular expression the BodyPartExamined must contain.
        per_study: ``all`` matching series, or ``one`` per study (by ``prefer``).
        prefer: Tie-break keys, most important first, for ``per_study: one``.

    Example:
        >>> SeriesSelection(sop_class=("CTImageStorag",))
        Traceback (most recent call last):
        ...
        ValueError: sop_class must name image storage SOP classes by pydicom keyword or \
UID, got 'CTImageStorag'; did you mean 'CTImageStorage'?
    """

    modality: tuple[str, ...] = ("CT",)
    sop_class: tuple[str, ...] = CT_SOP_CLASSES
    skip_image_type: tuple[str, ...] = ("LOCALIZER", "DERIVED")
    slice_thickness_mm: tuple[float, float] | None = None
    min_slices: int = 1
    max_slices: int | None = None
    kernel: str | None = None
    description: str | None = None
    skip_description: str | None = None
    body_part: str | None = None
    per_study: Literal["all", "one"] = "all"
    prefer: tuple[PreferKey, ...] = ("thinnest", "most_slices")

    def __post_init__(self) -> None:
        for key in ("modality", "sop_class", "skip_image_type", "prefer"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if not self.modality:
            raise ValueError("modality must name at least one modality")
        if not self.sop_class:
            raise ValueError("sop_class must name at least one SOP class")
        for name in self.sop_class:
            _sop_class_uid(name)
        if self.slice_thickness_mm is not None:
            low, high = self.slice_thickness_mm
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                raise ValueError(
                    "slice_thickness_mm must be [min, max] with 0 <= min <= max, got "
                    f"{list(self.slice_thickness_mm)}"
                )
        if self.min_slices < 1:
            raise ValueError(f"min_slices must be >= 1, got {self.min_slices}")
        if self.max_slices is not None and self.max_slices < self.min_slices:
            raise ValueError(
                f"max_slices must be >= min_slices {self.min_slices}, got {self.max_slices}"
            )
        for key in ("kernel", "description", "skip_description", "body_part"):
            _compile(key, getattr(self, key))
        if len(set(self.prefer)) != len(self.prefer):
            raise ValueError(f"prefer must name each key once, got {list(self.prefer)}")

    def check(self, series: DicomSeries) -> list[str]:
        """Every rule ``series`` fails, in words (empty: it passes).

        Example:
            >>> SeriesSelection(min_slices=3).check(localizer)  # doctest: +SKIP
            ['1 slice(s), fewer than min_slices 3']
        """
        first = series.first
        reasons = []
        if first.modality not in self.modality:
            reasons.append(f"Modality {first.modality or '(none)'} is not {_or(self.modality)}")
        accepted = {_sop_class_uid(name) for name in self.sop_class}
        if first.sop_class_uid not in accepted:
            reasons.append(
                f"SOP class {sop_class_name(first.sop_class_uid)} is not "
                f"{_or([sop_class_name(uid) for uid in sorted(accepted)])}"
            )
        skipped = [v for v in first.image_type if v.upper() in self._skip_types]
        if skipped:
            reasons.append(
                f"ImageType {chr(92).join(first.image_type)} holds {', '.join(skipped)} "
                "(skip_image_type)"
            )
        reasons += self._size_reasons(series)
        reasons += self._pattern_reasons(series)
        return reasons

    def decide(self, series: Sequence[DicomSeries]) -> list[SeriesChoice]:
        """One :class:`SeriesChoice` per series, in the order given.

        Example:
            >>> [c.selected for c in SeriesSelection().decide(scan.series)]  # doctest: +SKIP
            [False, True, True]
        """
        choices = {id(s): SeriesChoice(s, False, tuple(self.check(s))) for s in series}
        passing = [s for s in series if not choices[id(s)].reasons]
        if self.per_study == "all":
            for s in passing:
                choices[id(s)] = SeriesChoice(s, True)
            return [choices[id(s)] for s in series]
        for study, members in _by_study(passing).items():
            ranked = sorted(members, key=self._rank)
            best = ranked[0]
            how = f"chosen among {len(members)} matching series of the study by {self._words()}"
            choices[id(best)] = SeriesChoice(best, True, (how,) if len(members) > 1 else ())
            for other in ranked[1:]:
                choices[id(other)] = SeriesChoice(
                    other,
                    False,
                    (
                        f"study {study} has {len(members)} matching series; per_study 'one' "
                        f"chose {_label(best)} by {self._words()}",
                    ),
                )
        return [choices[id(s)] for s in series]

    @property
    def _skip_types(self) -> set[str]:
        return {v.upper() for v in self.skip_image_type}

    def _size_reasons(self, series: DicomSeries) -> list[str]:
        reasons = []
        if self.slice_thickness_mm is not None:
            low, high = self.slice_thickness_mm
            thickness = _thickness(series)
            if thickness is None:
                reasons.append("SliceThickness is unknown (slice_thickness_mm is set)")
            elif not low - 1e-3 <= thickness <= high + 1e-3:
                reasons.append(
                    f"SliceThickness {thickness:g} mm is outside slice_thickness_mm "
                    f"[{low:g}, {high:g}]"
                )
        count = series.shape[2]
        if count < self.min_slices:
            reasons.append(f"{count} slice(s), fewer than min_slices {self.min_slices}")
        if self.max_slices is not None and count > self.max_slices:
            reasons.append(f"{count} slices, more than max_slices {self.max_slices}")
        return reasons

    def _pattern_reasons(self, series: DicomSeries) -> list[str]:
        first = series.first
        reasons = []
        for key, tag, value in (
            ("kernel", "ConvolutionKernel", first.convolution_kernel),
            ("description", "SeriesDescription", first.series_description),
            ("body_part", "BodyPartExamined", first.body_part_examined),
        ):
            pattern = _compile(key, getattr(self, key))
            if pattern is not None and not pattern.search(value):
                reasons.append(f"{tag} {value!r} does not match {key} {pattern.pattern!r}")
        skip = _compile("skip_description", self.skip_description)
        if skip is not None and skip.search(first.series_description):
            reasons.append(
                f"SeriesDescription {first.series_description!r} matches skip_description "
                f"{skip.pattern!r}"
            )
        return reasons

    def _rank(self, series: DicomSeries) -> tuple:
        thickness = _thickness(series)
        thickness = math.inf if thickness is None else round(thickness, 2)
        count = series.shape[2]
        number = series.first.series_number
        values = {
            "thinnest": thickness,
            "thickest": -thickness if math.isfinite(thickness) else math.inf,
            "most_slices": -count,
            "fewest_slices": count,
            "lowest_number": math.inf if number is None else number,
            "highest_number": math.inf if number is None else -number,
        }
        return (
            bool(series.problems),
            *(values[key] for key in self.prefer),
            math.inf if number is None else number,
            series.key,
        )

    def _words(self) -> str:
        keys = [PREFER_KEYS[key] for key in self.prefer] + ["the lowest SeriesNumber"]
        return "readable first, then " + ", then ".join(dict.fromkeys(keys))


def pick_series(
    series: Sequence[DicomSeries], selection: SeriesSelection, *, folder: str | Path
) -> tuple[DicomSeries, list[SeriesChoice]]:
    """The one series of a folder a workflow runs on, and the decision on every series.

    A folder of one series gives that series whatever the rules say (it was chosen by
    whoever named the folder); of several, the one series the rules select.

    Args:
        series: The folder's series (:func:`ctpipe.io.discovery.scan_dicom`).
        selection: The workflow's rules.
        folder: The folder, for messages.

    Raises:
        InputError: No series, or none passes the rules (each one's reasons are named).
        AmbiguousSeriesError: Several pass the rules.

    Example:
        >>> rules = SeriesSelection(per_study="one")
        >>> chosen, choices = pick_series(scan.series, rules, folder="ct/")  # doctest: +SKIP
    """
    if not series:
        raise InputError(folder, "no DICOM image series found")
    if len(series) == 1:
        return series[0], [SeriesChoice(series[0], True, ("the only series",))]
    choices = selection.decide(series)
    chosen = [c.series for c in choices if c.selected]
    if len(chosen) == 1:
        return chosen[0], choices
    if not chosen:
        reasons = "; ".join(f"{_label(c.series)}: {c.reason}" for c in choices)
        raise InputError(
            folder,
            f"none of its {len(series)} series passes the workflow's select rules: {reasons}",
        )
    raise AmbiguousSeriesError(
        folder,
        f"{len(chosen)} series pass the workflow's select rules "
        f"({'; '.join(_label(s) for s in chosen)}): name one with input.series_uid or "
        "narrow select (e.g. per_study: one)",
    )


def sop_class_name(uid: str) -> str:
    """The name of a SOP class UID (the UID itself when pydicom does not know it).

    Example:
        >>> sop_class_name("1.2.840.10008.5.1.4.1.1.7")
        'Secondary Capture Image Storage'
        >>> sop_class_name("")
        '(none)'
    """
    if not uid:
        return "(none)"
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


def _sop_class_uid(name: str) -> str:
    """A SOP class keyword or UID as a UID; refuses anything else with the closest keyword."""
    import pydicom.uid

    if re.fullmatch(r"[0-9]+(\.[0-9]+)+", name):
        return name
    value = getattr(pydicom.uid, name, None)
    if isinstance(value, str) and name.endswith("Storage"):
        return str(value)
    from ctpipe.schema import did_you_mean

    keywords = [k for k in dir(pydicom.uid) if k.endswith("Storage")]
    raise ValueError(
        "sop_class must name image storage SOP classes by pydicom keyword or UID, got "
        f"{name!r}{did_you_mean(name, keywords)}"
    )


def _compile(key: str, pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise ValueError(f"{key} must be a regular expression, got {pattern!r} ({err})") from None


def _thickness(series: DicomSeries) -> float | None:
    first = series.first
    if first.slice_thickness:
        return float(first.slice_thickness)
    if series.layout is not None:
        return float(series.layout.spacing)
    return None


def _by_study(series: Sequence[DicomSeries]) -> dict[str, list[DicomSeries]]:
    """Series grouped by StudyInstanceUID (a series without one is a study of its own)."""
    groups: dict[str, list[DicomSeries]] = defaultdict(list)
    for s in series:
        study = s.first.study_instance_uid or f"(none: series {s.key})"
        groups[study].append(s)
    return groups


def _label(series: DicomSeries) -> str:
    first = series.first
    number = first.series_number if first.series_number is not None else "?"
    description = f" {first.series_description!r}" if first.series_description else ""
    return f"series {number}{description} ({series.key})"


def _or(values: Sequence[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else f"one of {', '.join(values)}"
