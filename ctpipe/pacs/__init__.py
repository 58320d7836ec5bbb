"""PACS integration: a DICOM node that runs a workflow on what it receives, and pull mode.

``ctpipe serve CONFIG`` runs :class:`~ctpipe.pacs.node.PacsNode`: a C-STORE SCP that writes
every instance to disk before acknowledging it, decides when a series is complete
(association end plus a quiet period), queues a job on disk, runs a processor (a workflow)
on the series and sends the results to a destination by C-STORE or DICOMweb STOW-RS, with
retries. ``ctpipe pull`` queries a PACS (C-FIND or QIDO-RS) and retrieves studies
(C-GET, C-MOVE or WADO-RS).

Modules, one idea each:

* :mod:`~ctpipe.pacs.config`: the typed serve configuration (YAML).
* :mod:`~ctpipe.pacs.storage`: safe file names from UIDs, durable writes.
* :mod:`~ctpipe.pacs.queue`: the on-disk job queue (SQLite), exactly-once processing.
* :mod:`~ctpipe.pacs.completion`: when a series is complete.
* :mod:`~ctpipe.pacs.scp`: the storage SCP: checks, status codes, allow-list.
* :mod:`~ctpipe.pacs.processor`: what runs on a series (a workflow, or any callable).
* :mod:`~ctpipe.pacs.send`: C-STORE SCU and STOW-RS senders.
* :mod:`~ctpipe.pacs.node`: the node that ties them together.
* :mod:`~ctpipe.pacs.pull`: query and retrieve.

Example:
    >>> from ctpipe.pacs.storage import safe_name
    >>> safe_name("1.2.840.113619.2.55")
    '1.2.840.113619.2.55'
"""
