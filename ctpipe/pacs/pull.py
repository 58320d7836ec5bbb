"""Pull mode: find studies on a PACS and retrieve them into a folder.

Two protocols, the same result: ``folder/<StudyInstanceUID>/<SeriesInstanceUID>/<SOP
Instance UID>.dcm`` (names made safe by :func:`~ctpipe.pacs.storage.safe_name`), each file
written to a temporary name first.

* **DIMSE** (:class:`DimsePeer`): C-FIND at study level (Study Root), then C-GET (the PACS
  sends the instances back on the same association: nothing to configure on the PACS) or
  C-MOVE (the PACS opens an association to our AE title, so the PACS must know it; a
  temporary storage SCP listens on ``move_port`` while the move runs).
* **DICOMweb** (:class:`WebPeer`): QIDO-RS search for studies, then WADO-RS retrieval.

A :class:`StudyQuery` holds the filters. Retrieved instances are checked like the node's
(:func:`~ctpipe.pacs.scp.check_dataset`, UIDs in the lenient form: digits and dots); a bad
one is refused and named in the log. C-GET and C-MOVE accept every transfer syntax the
reader decodes (:mod:`ctpipe.pacs.syntaxes`) and keep instances as they were sent.

Example:
    >>> query = StudyQuery(patient_id="PAT001", study_date="20240101-20241231", modality="CT")
    >>> query.qido_filters()
    {'PatientID': 'PAT001', 'StudyDate': '20240101-20241231', 'ModalitiesInStudy': 'CT'}
    >>> peer = DimsePeer(ae_title="ORTHANC", host="127.0.0.1", port=4242)
    >>> studies = find_studies(peer, query)  # doctest: +SKIP
    >>> retrieve_study(peer, studies[0].study_uid, "pulled")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ctpipe.errors import CTPipeError
from ctpipe.pacs.config import check_ae_title
from ctpipe.pacs.storage import instance_path, write_durably
from ctpipe.pacs.syntaxes import accepted_transfer_syntaxes, storage_contexts

__all__ = [
    "DimsePeer",
    "PullError",
    "StudyMatch",
    "StudyQuery",
    "WebPeer",
    "find_studies",
    "retrieve_study",
]

LOG = logging.getLogger("ctpipe.pacs")

_DATE = re.compile(r"(\d{8})?(-(\d{8})?)?")
#: Storage SOP classes accepted during C-GET (the PACS sends them back to us), by keyword.
GET_STORAGE_CLASSES = (
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "LegacyConvertedEnhancedCTImageStorage",
    "MRImageStorage",
    "EnhancedMRImageStorage",
    "PositronEmissionTomographyImageStorage",
    "EnhancedPETImageStorage",
    "NuclearMedicineImageStorage",
    "ComputedRadiographyImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "XRayAngiographicImageStorage",
    "UltrasoundImageStorage",
    "SecondaryCaptureImageStorage",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
    "SegmentationStorage",
    "ParametricMapStorage",
    "RTStructureSetStorage",
    "RTDoseStorage",
    "BasicTextSRStorage",
    "EnhancedSRStorage",
    "ComprehensiveSRStorage",
    "Comprehensive3DSRStorage",
    "KeyObjectSelectionDocumentStorage",
    "EncapsulatedPDFStorage",
)


class PullError(CTPipeError):
    """A query or retrieval failed (the message names the peer and the problem)."""


@dataclass(frozen=True)
class StudyQuery:
    """Study-level filters; None matches anything. DICOM wildcards (``*``, ``?``) work.

    Args:
        patient_id: PatientID.
        patient_name: PatientName (``Family^Given``, wildcards allowed).
        study_date: ``YYYYMMDD``, or a range ``YYYYMMDD-YYYYMMDD`` (either end may be open).
        modality: A modality in the study (ModalitiesInStudy), e.g. ``CT``.
        accession_number: AccessionNumber.
        study_uid: StudyInstanceUID.
        study_description: StudyDescription.

    Example:
        >>> StudyQuery(study_date="2024-01-01")
        Traceback (most recent call last):
        ...
        ValueError: study_date must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD, got '2024-01-01'
    """

    patient_id: str | None = None
    patient_name: str | None = None
    study_date: str | None = None
    modality: str | None = None
    accession_number: str | None = None
    study_uid: str | None = None
    study_description: str | None = None

    def __post_init__(self) -> None:
        if self.study_date is not None and not (
            self.study_date and _DATE.fullmatch(self.study_date)
        ):
            raise ValueError(
                f"study_date must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD, got {self.study_date!r}"
            )

    _KEYWORDS = (
        ("patient_id", "PatientID"),
        ("patient_name", "PatientName"),
        ("study_date", "StudyDate"),
        ("modality", "ModalitiesInStudy"),
        ("accession_number", "AccessionNumber"),
        ("study_uid", "StudyInstanceUID"),
        ("study_description", "StudyDescription"),
    )

    def qido_filters(self) -> dict[str, str]:
        """The filters as QIDO-RS query parameters (DICOM keywords)."""
        return {
            keyword: getattr(self, name)
            for name, keyword in self._KEYWORDS
            if getattr(self, name) is not None
        }

    def identifier(self) -> Any:
        """The C-FIND identifier: the filters plus the return keys of :class:`StudyMatch`.

        Example:
            >>> StudyQuery(patient_id="P1").identifier().QueryRetrieveLevel
            'STUDY'
        """
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        for name, keyword in self._KEYWORDS:
            setattr(ds, keyword, getattr(self, name) or "")
        ds.NumberOfStudyRelatedInstances = ""
        return ds


@dataclass(frozen=True)
class StudyMatch:
    """One study found by a query."""

    study_uid: str
    patient_id: str
    study_date: str
    description: str
    modalities: str
    instances: int | None

    @classmethod
    def from_dataset(cls, ds: Any) -> StudyMatch:
        """From a C-FIND response identifier or a QIDO-RS result (as a pydicom Dataset)."""
        count = ds.get("NumberOfStudyRelatedInstances", None)
        modalities = ds.get("ModalitiesInStudy", "") or ""
        if not isinstance(modalities, str):
            modalities = "\\".join(str(m) for m in modalities)
        return cls(
            study_uid=str(ds.get("StudyInstanceUID", "")),
            patient_id=str(ds.get("PatientID", "") or ""),
            study_date=str(ds.get("StudyDate", "") or ""),
            description=str(ds.get("StudyDescription", "") or ""),
            modalities=modalities,
            instances=int(count) if count not in (None, "") else None,
        )


@dataclass(frozen=True)
class DimsePeer:
    """A PACS reached by DIMSE (C-FIND, C-GET, C-MOVE).

    Args:
        ae_title: The PACS's AE title.
        host: Its address.
        port: Its DICOM port.
        calling_ae: Our AE title (for C-MOVE, the PACS must know it with ``move_port``).
        retrieve: ``get`` (C-GET) or ``move`` (C-MOVE).
        move_port: Where our temporary storage SCP listens during a C-MOVE.
        move_host: The address it listens on (all interfaces by default).
        timeout_s: Network, ACSE and DIMSE timeouts.
    """

    ae_title: str
    host: str
    port: int
    calling_ae: str = "CTPIPE"
    retrieve: Literal["get", "move"] = "get"
    move_port: int = 11113
    move_host: str = "0.0.0.0"
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title, "ae_title")
        check_ae_title(self.calling_ae, "calling_ae")
        if self.retrieve not in ("get", "move"):
            raise ValueError(f"retrieve must be 'get' or 'move', got {self.retrieve!r}")
        for name in ("port", "move_port"):
            if not 1 <= getattr(self, name) <= 65535:
                raise ValueError(
                    f"{name} must be a TCP port in 1..65535, got {getattr(self, name)}"
                )

    def describe(self) -> str:
        """The peer in words."""
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class WebPeer:
    """A PACS reached by DICOMweb (QIDO-RS, WADO-RS).

    Args:
        url: The DICOMweb base URL, e.g. ``http://127.0.0.1:8042/dicom-web``.
        timeout_s: The HTTP timeout.
    """

    url: str
    timeout_s: float = 60.0

    def describe(self) -> str:
        """The peer in words."""
        return self.url

    def client(self) -> Any:
        """A dicomweb-client for this peer."""
        from dicomweb_client.api import DICOMwebClient

        client = DICOMwebClient(self.url, timeout=self.timeout_s)
        client.set_http_retry_params(retry=False)  # fail at once, naming the server
        return client


# --- query -----------------------------------------------------------------------------------


def find_studies(peer: DimsePeer | WebPeer, query: StudyQuery) -> list[StudyMatch]:
    """Find the studies matching ``query``.

    Args:
        peer: The PACS.
        query: The filters.

    Returns:
        The matching studies, in the order the PACS returned them.

    Raises:
        PullError: When the PACS cannot be reached or the query fails.
    """
    if isinstance(peer, WebPeer):
        return _find_web(peer, query)
    return _find_dimse(peer, query)


def _find_web(peer: WebPeer, query: StudyQuery) -> list[StudyMatch]:
    import requests
    from pydicom.dataset import Dataset

    try:
        # One request, no paging: some servers ignore ``offset`` when filtering by
        # ModalitiesInStudy, which makes dicomweb-client's get_remaining loop forever.
        results = peer.client().search_for_studies(search_filters=query.qido_filters())
    except (requests.RequestException, OSError, ValueError) as err:
        raise PullError(f"QIDO-RS {peer.url}: {type(err).__name__}: {err}") from None
    return [StudyMatch.from_dataset(Dataset.from_json(item)) for item in results]


def _find_dimse(peer: DimsePeer, query: StudyQuery) -> list[StudyMatch]:
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    ae = _scu(peer)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, peer)
    matches = []
    try:
        responses = assoc.send_c_find(
            query.identifier(), StudyRootQueryRetrieveInformationModelFind
        )
        for status, identifier in responses:
            code = _status(status, peer, "C-FIND")
            if code in (0xFF00, 0xFF01) and identifier is not None:
                matches.append(StudyMatch.from_dataset(identifier))
            elif code != 0x0000:
                raise PullError(f"C-FIND {peer.describe()} failed with status 0x{code:04X}")
    finally:
        _release(assoc)
    return matches


# --- retrieve --------------------------------------------------------------------------------


def retrieve_study(
    peer: DimsePeer | WebPeer, study_uid: str, folder: str | PathLike[str]
) -> list[Path]:
    """Retrieve every instance of a study into ``folder/<study>/<series>/<sop>.dcm``.

    Args:
        peer: The PACS.
        study_uid: StudyInstanceUID of the study.
        folder: The destination folder (created when missing).

    Returns:
        The files written, sorted.

    Raises:
        PullError: When the retrieval fails or some instances could not be retrieved.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(peer, WebPeer):
        return _retrieve_web(peer, study_uid, folder)
    if peer.retrieve == "move":
        return _retrieve_move(peer, study_uid, folder)
    return _retrieve_get(peer, study_uid, folder)


def _retrieve_web(peer: WebPeer, study_uid: str, folder: Path) -> list[Path]:
    import requests

    written = []
    try:
        for ds in peer.client().iter_study(study_uid):
            written.append(_save_dataset(ds, folder))
    except (requests.RequestException, OSError, ValueError) as err:
        raise PullError(f"WADO-RS {peer.url}: {type(err).__name__}: {err}") from None
    return sorted(written)


def _save_dataset(ds: Any, folder: Path) -> Path:
    from io import BytesIO

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    target = instance_path(folder, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    write_durably(target, buffer.getvalue())
    return target


class _Receiver:
    """C-STORE handler writing retrieved instances under a folder (C-GET and C-MOVE)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> int:
        from ctpipe.pacs.scp import OUT_OF_RESOURCES, checked_dataset

        sop = str(event.request.AffectedSOPInstanceUID)
        # the user asked for these studies: UIDs need only be digits and dots (safe names)
        ds, problem = checked_dataset(event, strict_uids=False)
        if problem is not None:
            LOG.warning("refused retrieved instance %s: %s", sop, problem[1])
            with self._lock:
                self.refused.append(sop)
            return problem[0]
        target = instance_path(self.folder, ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
        try:
            write_durably(target, event.encoded_dataset(include_meta=True))
        except OSError as err:
            LOG.warning("cannot write %s: %s", target, err)
            return OUT_OF_RESOURCES
        with self._lock:
            self.written.append(target)
        return 0x0000


def _retrieve_get(peer: DimsePeer, study_uid: str, folder: Path) -> list[Path]:
    from pynetdicom import build_role, evt, sop_class

    ae = _scu(peer)
    ae.add_requested_context(sop_class.StudyRootQueryRetrieveInformationModelGet)
    roles = []
    syntaxes = accepted_transfer_syntaxes()
    for keyword in GET_STORAGE_CLASSES:
        uid = getattr(sop_class, keyword)
        ae.add_requested_context(uid, syntaxes)
        roles.append(build_role(uid, scp_role=True))
    receiver = _Receiver(folder)
    assoc = _associate(ae, peer, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)])
    try:
        final = _run_retrieve(
            assoc.send_c_get(
                _retrieve_identifier(study_uid), sop_class.StudyRootQueryRetrieveInformationModelGet
            ),
            peer,
            "C-GET",
        )
    finally:
        _release(assoc)
    return _finish(receiver, final, peer, "C-GET", study_uid)


def _retrieve_move(peer: DimsePeer, study_uid: str, folder: Path) -> list[Path]:
    from pynetdicom import AE, evt, sop_class

    receiver = _Receiver(folder)
    store_ae = AE(ae_title=peer.calling_ae)
    store_ae.supported_contexts = storage_contexts()
    try:
        server = store_ae.start_server(
            (peer.move_host, peer.move_port),
            block=False,
            evt_handlers=[(evt.EVT_C_STORE, receiver)],
        )
    except OSError as err:
        raise PullError(f"cannot listen on port {peer.move_port} for C-MOVE: {err}") from None
    try:
        ae = _scu(peer)
        ae.add_requested_context(sop_class.StudyRootQueryRetrieveInformationModelMove)
        assoc = _associate(ae, peer)
        try:
            final = _run_retrieve(
                assoc.send_c_move(
                    _retrieve_identifier(study_uid),
                    peer.calling_ae,
                    sop_class.StudyRootQueryRetrieveInformationModelMove,
                ),
                peer,
                "C-MOVE",
            )
        finally:
            _release(assoc)
    finally:
        server.shutdown()
    return _finish(receiver, final, peer, "C-MOVE", study_uid)


def _retrieve_identifier(study_uid: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _run_retrieve(responses: Any, peer: DimsePeer, what: str) -> tuple[int, int]:
    """Drain C-GET/C-MOVE responses; return (final status, failed sub-operations)."""
    code, failed = 0x0000, 0
    for status, _identifier in responses:
        code = _status(status, peer, what)
        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
    return code, failed


def _finish(
    receiver: _Receiver, final: tuple[int, int], peer: DimsePeer, what: str, study_uid: str
) -> list[Path]:
    code, failed = final
    if code not in (0x0000, 0xB000) or failed or receiver.refused:
        raise PullError(
            f"{what} {peer.describe()} study {study_uid}: final status 0x{code:04X}, "
            f"{failed} failed sub-operation(s), {len(receiver.refused)} refused instance(s), "
            f"{len(receiver.written)} written"
        )
    return sorted(set(receiver.written))


# --- association helpers -------------------------------------------------------------------


def _scu(peer: DimsePeer) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title=peer.calling_ae)
    for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, attr, peer.timeout_s)
    return ae


def _associate(ae: Any, peer: DimsePeer, **kwargs: Any) -> Any:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else "cannot be reached"
        raise PullError(f"{peer.describe()} {why} (calling AE title {peer.calling_ae})")
    return assoc


def _release(assoc: Any) -> None:
    if assoc.is_established:
        assoc.release()


def _status(status: Any, peer: DimsePeer, what: str) -> int:
    code = getattr(status, "Status", None)
    if code is None:
        raise PullError(f"{what} {peer.describe()}: no response (connection lost or timed out)")
    return int(code)
