"""How a series reached the node, and how its results say so.

A :class:`Reception` describes one job's series to its processor: how many instances, from
which AE title, and two facts that change what the results mean:

* ``incomplete``: the series was completed by the interrupted timeout (the association
  sending it was aborted, or the node stopped while it was open), so instances may be
  missing;
* ``revised``: results of an earlier job of the series were already sent; these results
  replace them (instances arrived after they were sent, ``late_instances: reprocess``).

:func:`mark_results` writes both into every DICOM result the node sends: its
SeriesDescription begins with ``INCOMPLETE`` and/or ``REVISED``, so that a reader at the PACS
sees it in the series list. A processor that takes a ``reception`` keyword (the workflow
processor does) also gets the :class:`Reception` itself, and records it in the run record
and the report.

Example:
    >>> reception = Reception(job_id=7, series_uid="1.2.3", study_uid="1.2", calling_aet="CT1",
    ...                       instances=40, incomplete="the association was aborted")
    >>> reception.markers, marked_description("ctpipe denoised", reception.markers)
    (('INCOMPLETE',), 'INCOMPLETE ctpipe denoised')
    >>> reception.warnings()[0]
    'series incomplete (40 instances received): the association was aborted'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ctpipe.io.atomic import atomic_path

__all__ = ["INCOMPLETE", "REVISED", "Reception", "mark_results", "marked_description"]

#: Marker of results computed from a series that may lack instances.
INCOMPLETE = "INCOMPLETE"
#: Marker of results that replace results sent earlier for the same series.
REVISED = "REVISED"
#: Longest SeriesDescription (VR LO).
MAX_DESCRIPTION = 64


@dataclass(frozen=True)
class Reception:
    """How one job's series was received (see the module docstring).

    Args:
        job_id: The node's job number.
        series_uid: SeriesInstanceUID.
        study_uid: StudyInstanceUID.
        calling_aet: The AE title that sent the first instance.
        instances: Instances in the series folder.
        incomplete: Why the series may lack instances, or None when it is complete.
        supersedes: The series' earlier job whose instances are included, or None.
        revised: Whether these results replace results sent for an earlier job.
    """

    job_id: int
    series_uid: str
    study_uid: str
    calling_aet: str
    instances: int
    incomplete: str | None = None
    supersedes: int | None = None
    revised: bool = False

    @classmethod
    def from_job(cls, job: Any, instances: int) -> Reception:
        """The reception of a queue :class:`~ctpipe.pacs.queue.Job`."""
        return cls(
            job_id=job.id,
            series_uid=job.series_uid,
            study_uid=job.study_uid,
            calling_aet=job.calling_aet,
            instances=instances,
            incomplete=job.incomplete,
            supersedes=job.supersedes,
            revised=job.revised,
        )

    @property
    def markers(self) -> tuple[str, ...]:
        """``INCOMPLETE`` and/or ``REVISED``, in that order; empty for a plain series."""
        return tuple(
            marker
            for marker, applies in ((INCOMPLETE, self.incomplete), (REVISED, self.revised))
            if applies
        )

    def warnings(self) -> list[str]:
        """One sentence per marker, for logs, the run record and the report."""
        found = []
        if self.incomplete:
            found.append(
                f"series incomplete ({self.instances} instances received): {self.incomplete}"
            )
        if self.revised:
            found.append(
                f"revised result: instances of the series arrived after the results of job "
                f"{self.supersedes} were sent; the whole series was processed again"
            )
        return found

    def to_record(self) -> dict[str, Any]:
        """The reception as plain values, with ``complete`` and the markers."""
        return {**asdict(self), "complete": self.incomplete is None, "markers": list(self.markers)}


def marked_description(description: str, markers: Sequence[str]) -> str:
    """``description`` headed by the markers it does not yet carry, cut to 64 characters.

    Example:
        >>> marked_description("REVISED ctpipe seg", ["INCOMPLETE", "REVISED"])
        'INCOMPLETE REVISED ctpipe seg'
    """
    words = description.split(" ")
    missing = [m for m in markers if m not in words[: len(markers)]]
    text = " ".join([*missing, description]).strip() if missing else description
    return text[:MAX_DESCRIPTION].rstrip()


def mark_results(files: Sequence[Path], reception: Reception) -> int:
    """Head the SeriesDescription of each DICOM file with the reception's markers.

    Each file is rewritten atomically (temporary file, then rename). Files that are not
    DICOM are left as they are.

    Returns:
        How many files were changed (0 when the reception has no marker).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not reception.markers:
        return 0
    changed = 0
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError):
            continue
        description = str(ds.get("SeriesDescription", "") or "")
        marked = marked_description(description, reception.markers)
        if marked == description:
            continue
        ds.SeriesDescription = marked
        with atomic_path(Path(path)) as tmp:
            ds.save_as(tmp)
        changed += 1
    return changed
