"""Which transfer syntaxes the node accepts: every one whose pixel data ctpipe can decode.

The reader decodes pixel data with pydicom (:mod:`ctpipe.io.dicom_volume`), whose decoders
use the installed plugins: RLE Lossless always; JPEG 2000 (lossless and lossy) and the JPEG
family (baseline, extended, lossless) with pylibjpeg-openjpeg and pylibjpeg-libjpeg; JPEG-LS
with pylibjpeg-libjpeg or pyjpegls; High-Throughput JPEG 2000 with pylibjpeg-openjpeg. The
node offers, for every storage SOP class, the uncompressed syntaxes plus each compressed
syntax whose decoder is available at start-up, so it never accepts an instance that the
workflow could not read, and never refuses one that it could. Instances are stored as they
were received, in their own transfer syntax (nothing is transcoded).

Example:
    >>> from pydicom.uid import ExplicitVRLittleEndian, RLELossless
    >>> syntaxes = accepted_transfer_syntaxes()
    >>> syntaxes[1] == ExplicitVRLittleEndian, RLELossless in syntaxes
    (True, True)
"""

from __future__ import annotations

from typing import Any

__all__ = ["UNCOMPRESSED_SYNTAXES", "accepted_transfer_syntaxes", "storage_contexts"]

#: Native (uncompressed) syntaxes, preferred first: implicit VR little endian is the DICOM
#: default that every node must accept; deflate and big endian are decoded by pydicom too.
UNCOMPRESSED_SYNTAXES = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
)


def accepted_transfer_syntaxes() -> list[str]:
    """The uncompressed syntaxes, then every compressed one pydicom can decode here.

    Returns:
        Transfer syntax UIDs, in order of preference (uncompressed first).

    Example:
        >>> from pydicom.uid import JPEG2000Lossless
        >>> JPEG2000Lossless in accepted_transfer_syntaxes()  # with pylibjpeg-openjpeg
        True
    """
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes

    accepted = list(UNCOMPRESSED_SYNTAXES)
    for uid in AllTransferSyntaxes:
        if not uid.is_compressed or uid in accepted:
            continue
        try:
            available = get_decoder(uid).is_available
        except NotImplementedError:  # pydicom has no decoder at all (video, JPIP)
            continue
        if available:
            accepted.append(str(uid))
    return accepted


def storage_contexts() -> list[Any]:
    """The presentation contexts: every storage SOP class with the accepted syntaxes.

    Returns:
        pynetdicom ``PresentationContext`` objects for ``AE.supported_contexts``.
    """
    from pynetdicom import AllStoragePresentationContexts, build_context

    syntaxes = accepted_transfer_syntaxes()
    return [build_context(cx.abstract_syntax, syntaxes) for cx in AllStoragePresentationContexts]
