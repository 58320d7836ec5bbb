"""The storage SCP: receive instances, check them, write them to disk, then acknowledge.

:class:`StorageSCP` holds the pynetdicom event handlers of the node:

* **C-ECHO**: answered with success (``echoscu`` and PACS "test" buttons work).
* **C-STORE**: the data set is decoded and checked (:func:`check_dataset`); a bad one is
  refused with a failure status and logged, stored nowhere; a good one is written to its
  job's input folder as it was received, in its own transfer syntax
  (:func:`~ctpipe.pacs.storage.write_durably`, named by its SOP Instance UID through
  :func:`~ctpipe.pacs.storage.safe_name`) and only then acknowledged with ``0x0000``. A
  second copy of an instance replaces the first.
* **Transfer syntaxes**: every storage SOP class, in every transfer syntax the reader can
  decode here (:mod:`ctpipe.pacs.syntaxes`: uncompressed, RLE, JPEG, JPEG-LS, JPEG 2000).
* **Association end**: a normal release or an abort is recorded for every series the
  association sent to (:mod:`ctpipe.pacs.completion` decides when they are complete).
* **AE titles**: with ``require_called_aet`` (the default) an association whose called AE
  title is not the node's is rejected ("called AE title not recognised"); with
  ``allowed_calling_aets`` set, associations from other calling AE titles are rejected
  ("calling AE title not recognised"). Each rejection is logged with its reason.

Failure statuses (PS3.4 Annex B.2.3):

* ``0xA700`` out of resources: the instance could not be written to disk.
* ``0xA900`` data set does not match SOP class: a required UID is missing, is not a valid
  DICOM UID (:func:`uid_problem`) or differs from the C-STORE request.
* ``0xC000`` cannot understand: the data set cannot be decoded, or its pixel data is
  shorter than its image size needs.

Example:
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    >>> ds.StudyInstanceUID = "1.2.3"
    >>> check_dataset(ds, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")
    (43264, 'SeriesInstanceUID is missing or empty')
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Hashable
from typing import Any

from ctpipe.pacs.completion import AssociationTracker
from ctpipe.pacs.config import NodeConfig
from ctpipe.pacs.queue import JobQueue
from ctpipe.pacs.storage import MAX_PLAIN_LENGTH, instance_path, safe_name, write_durably
from ctpipe.pacs.syntaxes import storage_contexts

__all__ = [
    "CANNOT_UNDERSTAND",
    "DATASET_DOES_NOT_MATCH",
    "OUT_OF_RESOURCES",
    "SUCCESS",
    "StorageSCP",
    "check_dataset",
    "checked_dataset",
    "rejection_reason",
    "uid_problem",
]

LOG = logging.getLogger("ctpipe.pacs")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

#: UIDs every stored instance must carry (Type 1 in every storage IOD).
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
#: A conformant UID (PS3.5 9.1): components of digits without leading zeros, dot-separated.
_VALID_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
#: Longest UID (PS3.5 9.1).
MAX_UID_LENGTH = 64
#: Attributes that give the size of uncompressed pixel data.
IMAGE_SIZE_KEYWORDS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "NumberOfFrames")


def uid_problem(value: str, *, strict: bool = True) -> str | None:
    """Why ``value`` is not a usable UID, or None when it is.

    Strict (the default): a conformant DICOM UID (PS3.5 9.1): at most 64 characters,
    dot-separated components of digits, no leading zero in a component. Lenient: digits and
    dots, at most 128 characters (leading zeros and long UIDs, as some old systems write
    them).

    Example:
        >>> uid_problem("1.2.840.10008.5.1.4.1.1.2") is None
        True
        >>> uid_problem("1.2.840.0010")
        'digits and dots, no leading zeros, at most 64 characters'
        >>> uid_problem("1.2.840.0010", strict=False) is None
        True
    """
    if strict:
        if len(value) <= MAX_UID_LENGTH and _VALID_UID.fullmatch(value):
            return None
        return f"digits and dots, no leading zeros, at most {MAX_UID_LENGTH} characters"
    if safe_name(value) == value:  # digits and dots: used as a file name as it is
        return None
    return f"digits and dots, at most {MAX_PLAIN_LENGTH} characters"


def check_dataset(
    ds: Any, sop_class_uid: str, sop_instance_uid: str, *, strict_uids: bool = True
) -> tuple[int, str] | None:
    """Check a received data set; return ``(failure status, problem)`` or None when usable.

    Every element is decoded (so a data set with undecodable values is refused now, not
    later in the workflow), the four UIDs that file the instance must be present, valid
    (:func:`uid_problem`) and match the C-STORE request, and uncompressed pixel data must
    be as long as the image needs.

    Args:
        ds: The decoded data set (pydicom).
        sop_class_uid: Affected SOP Class UID of the C-STORE request.
        sop_instance_uid: Affected SOP Instance UID of the C-STORE request.
        strict_uids: Whether UIDs must conform to DICOM, or only be digits and dots.

    Returns:
        None, or the failure status and the problem in words.

    Example:
        >>> from pydicom.data import get_testdata_file
        >>> from pydicom import dcmread
        >>> ds = dcmread(get_testdata_file("MR_truncated.dcm"))
        >>> status, problem = check_dataset(ds, ds.SOPClassUID, ds.SOPInstanceUID)
        >>> hex(status), problem
        ('0xc000', 'pixel data holds 8130 bytes, the image needs 8192')
    """
    try:
        for _ in ds.iterall():
            pass
    except Exception as err:  # any decoding failure refuses the data set
        return CANNOT_UNDERSTAND, f"cannot decode the data set: {type(err).__name__}: {err}"
    for keyword in REQUIRED_UIDS:
        value = str(ds.get(keyword, "") or "")
        if not value.strip():
            return DATASET_DOES_NOT_MATCH, f"{keyword} is missing or empty"
        rule = uid_problem(value, strict=strict_uids)
        if rule is not None:
            shown = value if len(value) <= 80 else value[:77] + "..."
            return DATASET_DOES_NOT_MATCH, f"{keyword} {shown!r} is not a valid DICOM UID ({rule})"
    if str(ds.SOPInstanceUID) != str(sop_instance_uid):
        return DATASET_DOES_NOT_MATCH, (
            f"SOPInstanceUID {ds.SOPInstanceUID} differs from the request's {sop_instance_uid}"
        )
    if str(ds.SOPClassUID) != str(sop_class_uid):
        return DATASET_DOES_NOT_MATCH, (
            f"SOPClassUID {ds.SOPClassUID} differs from the request's {sop_class_uid}"
        )
    return _check_pixel_length(ds)


def checked_dataset(event: Any, *, strict_uids: bool = True) -> tuple[Any, tuple[int, str] | None]:
    """Decode and check the data set of a C-STORE event (:func:`check_dataset`).

    Returns:
        The data set (None when it cannot be decoded) and None or ``(status, problem)``.
    """
    request = event.request
    try:
        ds = event.dataset
        ds.file_meta = event.file_meta
        problem = check_dataset(
            ds,
            str(request.AffectedSOPClassUID),
            str(request.AffectedSOPInstanceUID),
            strict_uids=strict_uids,
        )
    except Exception as err:  # any decoding failure refuses the data set
        return None, (CANNOT_UNDERSTAND, f"cannot decode the data set: {type(err).__name__}: {err}")
    return ds, problem


def _check_pixel_length(ds: Any) -> tuple[int, str] | None:
    from pydicom.pixels.utils import get_expected_length

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or (syntax is not None and syntax.is_compressed):
        return None
    for keyword in IMAGE_SIZE_KEYWORDS:
        value = ds.get(keyword, 1)
        if not isinstance(value, int) or value < 0:
            return CANNOT_UNDERSTAND, f"{keyword} must be a whole number, got {value!r}"
    try:
        expected = int(get_expected_length(ds, unit="bytes"))
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        return CANNOT_UNDERSTAND, f"the image attributes are unusable: {err}"
    actual = len(ds.PixelData)
    if actual < expected:
        return CANNOT_UNDERSTAND, f"pixel data holds {actual} bytes, the image needs {expected}"
    return None


class StorageSCP:
    """The node's pynetdicom handlers and server (see the module docstring).

    Args:
        queue: The job queue: it gives each instance its job and input folder.
        node: The ``node`` section of the serve config.
        tracker: Which series each open association sent to (a new one when None).
    """

    def __init__(
        self, queue: JobQueue, node: NodeConfig, tracker: AssociationTracker | None = None
    ) -> None:
        self.queue = queue
        self.node = node
        self.tracker = tracker or AssociationTracker()
        self._server: Any = None

    # --- handlers -------------------------------------------------------------------------

    def handle_echo(self, event: Any) -> int:
        """C-ECHO: always success."""
        return SUCCESS

    def handle_store(self, event: Any) -> int:
        """C-STORE: check, write durably, then acknowledge (see the module docstring)."""
        request = event.request
        calling = _calling_aet(event.assoc)
        sop = str(request.AffectedSOPInstanceUID)
        ds, problem = checked_dataset(event, strict_uids=self.node.strict_uids)
        if problem is not None:
            return self._refuse(calling, sop, *problem)
        series, study = str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)
        try:
            job_id = self.queue.receiving_job(
                series,
                study,
                calling_aet=calling,
                opens_association=lambda job: self.tracker.touch(_key(event.assoc), job),
            )
            target = instance_path(self.queue.input_folder(job_id), sop)
            write_durably(target, event.encoded_dataset(include_meta=True))
        except (OSError, sqlite3.Error) as err:
            return self._refuse(calling, sop, OUT_OF_RESOURCES, f"cannot write to disk: {err}")
        LOG.debug("stored %s (series %s) from %s as job %d", sop, series, calling, job_id)
        return SUCCESS

    def handle_released(self, event: Any) -> None:
        """A-RELEASE: the series this association sent to may now complete."""
        self._ended(event.assoc, aborted=False)

    def handle_aborted(self, event: Any) -> None:
        """A-ABORT or lost connection: the series wait for the interrupted timeout."""
        self._ended(event.assoc, aborted=True)

    def handle_closed(self, event: Any) -> None:
        """Connection closed: an abort unless the association was released first.

        pynetdicom signals the end by a release or abort event too; whichever comes first
        is counted, the other finds nothing left to do.
        """
        self._ended(event.assoc, aborted=not getattr(event.assoc, "is_released", False))

    def handle_rejected(self, event: Any) -> None:
        """Log a refused association with the reason (AE titles, too many associations)."""
        LOG.warning(
            "refused an association from %s (%s): %s",
            _calling_aet(event.assoc),
            _peer(event.assoc),
            rejection_reason(event.assoc, self.node),
        )

    def _ended(self, assoc: Any, *, aborted: bool) -> None:
        job_ids = self.tracker.end(_key(assoc))
        if job_ids:
            self.queue.association_ended(job_ids, aborted=aborted)
            how = "aborted" if aborted else "released"
            LOG.info("association from %s %s (jobs %s)", _calling_aet(assoc), how, sorted(job_ids))

    def _refuse(self, calling: str, sop: str, status: int, problem: str) -> int:
        LOG.warning(
            "refused instance %s from %s with status 0x%04X: %s", sop, calling, status, problem
        )
        return status

    # --- server -----------------------------------------------------------------------------

    def handlers(self) -> list[tuple[Any, Any]]:
        """The (event, handler) pairs to bind."""
        from pynetdicom import evt

        return [
            (evt.EVT_C_ECHO, self.handle_echo),
            (evt.EVT_C_STORE, self.handle_store),
            (evt.EVT_RELEASED, self.handle_released),
            (evt.EVT_ABORTED, self.handle_aborted),
            (evt.EVT_CONN_CLOSE, self.handle_closed),
            (evt.EVT_REJECTED, self.handle_rejected),
        ]

    def build_ae(self) -> Any:
        """A pynetdicom AE: every storage SOP class in every decodable syntax, verification."""
        from pynetdicom import AE
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.node.ae_title)
        ae.supported_contexts = storage_contexts()
        ae.add_supported_context(Verification)
        ae.maximum_associations = self.node.max_associations
        ae.require_calling_aet = list(self.node.allowed_calling_aets)
        ae.require_called_aet = self.node.require_called_aet
        return ae

    def start(self) -> tuple[str, int]:
        """Start listening in background threads; return the bound (host, port).

        Raises:
            OSError: When the address cannot be bound (port in use, no permission).
        """
        ae = self.build_ae()
        self._server = ae.start_server(
            (self.node.host, self.node.port), block=False, evt_handlers=self.handlers()
        )
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop listening and close open associations."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None


def rejection_reason(assoc: Any, node: NodeConfig) -> str:
    """Why the node rejected an association, in words (the checks pynetdicom made).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> request = NS(called_ae_title="NOTCTPIPE", calling_ae_title="PACS")
        >>> assoc = NS(requestor=NS(primitive=request, ae_title="PACS"))
        >>> rejection_reason(assoc, NodeConfig(ae_title="CTPIPE"))
        "called AE title 'NOTCTPIPE' is not this node's ('CTPIPE')"
    """
    request = getattr(getattr(assoc, "requestor", None), "primitive", None)
    if request is None:  # pragma: no cover - pynetdicom keeps the request
        return "association request refused"
    called = str(getattr(request, "called_ae_title", "") or "").strip()
    calling = str(getattr(request, "calling_ae_title", "") or "").strip()
    reasons = []
    if node.require_called_aet and called != node.ae_title:
        reasons.append(f"called AE title {called!r} is not this node's ({node.ae_title!r})")
    if node.allowed_calling_aets and calling not in node.allowed_calling_aets:
        allowed = ", ".join(node.allowed_calling_aets)
        reasons.append(f"calling AE title {calling!r} is not allowed (allowed: {allowed})")
    return "; ".join(reasons) or f"too many associations (max_associations {node.max_associations})"


def _key(assoc: Any) -> Hashable:
    return assoc  # the Association object, alive until its end event


def _calling_aet(assoc: Any) -> str:
    try:
        return str(assoc.requestor.ae_title).strip() or "?"
    except AttributeError:  # pragma: no cover - pynetdicom always sets the requestor
        return "?"


def _peer(assoc: Any) -> str:
    try:
        return f"{assoc.requestor.address}:{assoc.requestor.port}"
    except AttributeError:  # pragma: no cover
        return "?"
