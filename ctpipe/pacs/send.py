"""Send DICOM files to a destination: C-STORE (pynetdicom) or STOW-RS (dicomweb-client).

A sender's :meth:`~DimseSender.send` sends files in order and calls ``on_sent(path)`` for
each file the destination acknowledged, so that the queue records progress file by file;
it raises :class:`SendError` at the first failure (destination down, association refused,
a failure status). Retrying with backoff is the node's job (:mod:`ctpipe.pacs.node`).

Example:
    >>> from ctpipe.pacs.config import DestinationConfig
    >>> sender = build_sender(DestinationConfig(kind="dimse", ae_title="PACS", port=104), "CTPIPE")
    >>> sender.description
    'C-STORE PACS@127.0.0.1:104'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ctpipe.errors import CTPipeError
from ctpipe.pacs.config import DestinationConfig

__all__ = ["DimseSender", "SendError", "Sender", "StowSender", "build_sender"]

LOG = logging.getLogger("ctpipe.pacs")

#: C-STORE statuses meaning "stored": success and the storage warnings (coercion, elements
#: discarded, data set does not match SOP class but stored).
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})
#: Files sent in one STOW-RS request (bounds the memory one request takes).
STOW_BATCH = 16
#: At most this many presentation contexts fit in one association.
MAX_CONTEXTS = 128


class SendError(CTPipeError):
    """A destination did not take a file (down, refused, or a failure status)."""


class Sender(Protocol):
    """Sends files to one destination."""

    description: str

    def send(self, files: Sequence[Path], on_sent: Callable[[Path], None]) -> None:
        """Send ``files`` in order; call ``on_sent`` for each acknowledged one."""
        ...  # pragma: no cover


class DimseSender:
    """C-STORE SCU: one association per call, raw files sent as they are on disk.

    Args:
        calling_ae: Our AE title.
        called_ae: The destination's AE title.
        host: The destination's address.
        port: The destination's port.
        timeout_s: Network, ACSE and DIMSE timeouts.

    Example:
        >>> DimseSender("CTPIPE", "ORTHANC", "127.0.0.1", 4242).description
        'C-STORE ORTHANC@127.0.0.1:4242'
    """

    def __init__(
        self, calling_ae: str, called_ae: str, host: str, port: int, timeout_s: float = 30.0
    ) -> None:
        self.calling_ae = calling_ae
        self.called_ae = called_ae
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.description = f"C-STORE {called_ae}@{host}:{port}"

    def send(self, files: Sequence[Path], on_sent: Callable[[Path], None]) -> None:
        """Send ``files`` in one association; see the module docstring.

        Raises:
            SendError: When the association cannot be made or a file is not stored.
        """
        if not files:
            return
        from pynetdicom import AE

        ae = AE(ae_title=self.calling_ae)
        for attr in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
            setattr(ae, attr, self.timeout_s)
        for sop_class, syntax in _contexts(files):
            ae.add_requested_context(sop_class, syntax)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "cannot be reached"
            raise SendError(f"{self.description} {why}")
        try:
            for path in files:
                self._store(assoc, path)
                on_sent(path)
        finally:
            if assoc.is_established:
                assoc.release()

    def _store(self, assoc: object, path: Path) -> None:
        try:
            status = assoc.send_c_store(path)  # type: ignore[attr-defined]
        except (OSError, ValueError, RuntimeError) as err:
            raise SendError(f"{self.description}: cannot send {path}: {err}") from None
        code = getattr(status, "Status", None)
        if code is None:
            raise SendError(f"{self.description}: no response for {path} (connection lost)")
        if int(code) not in STORED_STATUSES:
            raise SendError(f"{self.description}: {path} refused with status 0x{int(code):04X}")


class StowSender:
    """DICOMweb STOW-RS client (dicomweb-client), :data:`STOW_BATCH` files per request.

    Args:
        url: The DICOMweb base URL (e.g. ``http://127.0.0.1:8042/dicom-web``).
        timeout_s: The HTTP timeout.

    Example:
        >>> StowSender("http://127.0.0.1:8042/dicom-web").description
        'STOW-RS http://127.0.0.1:8042/dicom-web'
    """

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.description = f"STOW-RS {url}"

    def send(self, files: Sequence[Path], on_sent: Callable[[Path], None]) -> None:
        """Send ``files`` in batches; see the module docstring.

        Raises:
            SendError: When a request fails or the server lists a file as failed.
        """
        if not files:
            return
        import pydicom
        import requests
        from dicomweb_client.api import DICOMwebClient

        client = DICOMwebClient(self.url, timeout=self.timeout_s)
        client.set_http_retry_params(retry=False)  # the node retries with its own backoff
        for start in range(0, len(files), STOW_BATCH):
            batch = list(files[start : start + STOW_BATCH])
            datasets = [pydicom.dcmread(path) for path in batch]
            try:
                response = client.store_instances(datasets)
            except (requests.RequestException, OSError, ValueError) as err:
                raise SendError(f"{self.description}: {type(err).__name__}: {err}") from None
            failed = _failed_sops(response)
            for path, ds in zip(batch, datasets, strict=True):
                if str(ds.SOPInstanceUID) in failed:
                    reason = failed[str(ds.SOPInstanceUID)]
                    raise SendError(f"{self.description}: {path} refused (reason {reason})")
                on_sent(path)


def _failed_sops(response: object) -> dict[str, str]:
    """SOP Instance UID -> failure reason, from a STOW-RS response dataset."""
    failed: dict[str, str] = {}
    for item in getattr(response, "FailedSOPSequence", None) or []:
        reason = item.get("FailureReason")
        text = "unknown" if reason is None else f"0x{int(reason):04X}"
        failed[str(item.get("ReferencedSOPInstanceUID", ""))] = text
    return failed


def _contexts(files: Sequence[Path]) -> list[tuple[str, str]]:
    """The (SOP class, transfer syntax) pairs of ``files``, read from their file meta.

    Raises:
        SendError: When a file has no usable file meta, or more than 128 pairs are needed.
    """
    from pydicom.errors import InvalidDicomError
    from pynetdicom.dsutils import split_dataset

    pairs: dict[tuple[str, str], None] = {}
    for path in files:
        try:
            meta, _ = split_dataset(Path(path))
            pair = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
        except (OSError, AttributeError, ValueError, EOFError, InvalidDicomError) as err:
            raise SendError(f"{path}: not a DICOM file with a file meta header ({err})") from None
        pairs[pair] = None
    if len(pairs) > MAX_CONTEXTS:
        raise SendError(
            f"{len(pairs)} SOP class / transfer syntax pairs to send, at most {MAX_CONTEXTS} "
            "fit in one association"
        )
    return list(pairs)


def build_sender(destination: DestinationConfig, calling_ae: str) -> Sender:
    """The sender for a configured destination.

    Args:
        destination: The ``destination`` section of a serve config.
        calling_ae: Our AE title (used for C-STORE).

    Returns:
        A :class:`DimseSender` or a :class:`StowSender`.
    """
    if destination.kind == "dimse":
        return DimseSender(
            calling_ae,
            str(destination.ae_title),
            destination.host,
            int(destination.port or 0),
            destination.timeout_s,
        )
    return StowSender(str(destination.url), destination.timeout_s)
