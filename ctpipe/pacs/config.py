"""Typed configuration of the DICOM node (``ctpipe serve CONFIG``), loaded from YAML.

The YAML file (example: ``workflows/pacs_node.yaml``) loads into :class:`ServeConfig`, a tree
of frozen dataclasses checked by :mod:`ctpipe.schema`: unknown keys are refused with the key
path, the allowed keys and the closest spelling, and each section checks its own values.

Sections (every key is optional unless marked required):

* ``storage`` (required): the node's work folder: received instances, job outputs and the
  job queue (``queue.sqlite``). Keep it on a local disk.
* ``workflow`` or ``processor`` (exactly one): the workflow file run on each complete series,
  or a ``module:callable`` taking ``(series_folder, output_folder)`` and returning the DICOM
  files to send.
* ``node``: the listening side: ``ae_title``, ``host``, ``port``, ``require_called_aet``
  (true: associations calling another AE title are rejected), ``allowed_calling_aets``
  (empty: any calling AE title is accepted), ``max_associations``, ``strict_uids`` (true:
  instances whose UIDs are not valid DICOM UIDs are refused; false: digits and dots, e.g.
  leading zeros, are accepted).
* ``completion`` (:class:`~ctpipe.pacs.completion.CompletionPolicy`): ``quiet_period_s``
  after the last association that sent to a series ends normally; ``interrupted_timeout_s``
  when it was aborted (or the node restarted while it was open), to give the sender time
  to send the series again; ``incomplete`` (``mark`` or ``skip``) for a series completed by
  that timeout; ``late_instances`` (``reprocess`` or ``store``) for instances arriving
  after the series' results were sent.
* ``destination``: where results go: ``kind: dimse`` (C-STORE to ``ae_title`` at
  ``host:port``) or ``kind: dicomweb`` (STOW-RS to ``url``), with ``retry`` backoff. Without
  a destination the results stay in the storage folder.
* ``max_process_attempts``: how often a job interrupted by a crash is started again before it
  is marked failed; ``poll_interval_s``: how often the node looks for work.

Relative paths are taken from the working directory, like every ``ctpipe`` command's paths.

Example:
    >>> config = ServeConfig.from_dict({
    ...     "storage": "/var/lib/ctpipe",
    ...     "workflow": "workflows/denoise_segment.yaml",
    ...     "node": {"ae_title": "CTPIPE", "port": 11112, "allowed_calling_aets": ["ORTHANC"]},
    ...     "destination": {"kind": "dicomweb", "url": "http://127.0.0.1:8042/dicom-web"},
    ... })
    >>> config.node.allowed_calling_aets, config.destination.retry.delay(3)
    (('ORTHANC',), 20.0)
    >>> ServeConfig.from_dict({"storage": "s", "workflow": "w.yaml", "nodes": {}})
    Traceback (most recent call last):
    ...
    ctpipe.pacs.config.ServeConfigError: <config>: unknown key 'nodes'; allowed keys at the \
top level: storage, workflow, processor, node, completion, destination, \
max_process_attempts, poll_interval_s; did you mean 'node'?
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from ctpipe.errors import InputError
from ctpipe.pacs.completion import CompletionPolicy
from ctpipe.schema import load_yaml_dataclass, parse_dataclass

__all__ = [
    "DestinationConfig",
    "NodeConfig",
    "RetryConfig",
    "ServeConfig",
    "ServeConfigError",
    "check_ae_title",
    "load_serve_config",
]

_PROCESSOR = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")


class ServeConfigError(InputError):
    """A DICOM node configuration file is malformed (the message names the key path)."""


def check_ae_title(value: str, name: str) -> str:
    """Check a DICOM AE title: 1 to 16 characters, no backslash or control characters.

    Args:
        value: The AE title.
        name: The setting's name, for the message.

    Returns:
        The AE title without surrounding spaces (DICOM pads AE titles with spaces).

    Raises:
        ValueError: When the title breaks the rule; the message names the setting.

    Example:
        >>> check_ae_title(" CTPIPE ", "node.ae_title")
        'CTPIPE'
        >>> check_ae_title("A" * 17, "node.ae_title")
        Traceback (most recent call last):
        ...
        ValueError: node.ae_title must be 1 to 16 characters without backslash or control \
characters, got 'AAAAAAAAAAAAAAAAA'
    """
    text = value.strip(" ")
    if not (1 <= len(text) <= 16) or "\\" in text or any(ord(c) < 32 for c in text):
        raise ValueError(
            f"{name} must be 1 to 16 characters without backslash or control characters, "
            f"got {value!r}"
        )
    return text


def _check_port(port: int, name: str) -> None:
    if not 1 <= port <= 65535:
        raise ValueError(f"{name} must be a TCP port in 1..65535, got {port}")


def _check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class RetryConfig:
    """Backoff between attempts to reach a destination that is down.

    Attempt ``n`` (1-based) that fails waits ``min(initial_delay_s * factor**(n-1),
    max_delay_s)`` before the next. Results are never dropped: the node keeps trying.

    Example:
        >>> [RetryConfig(initial_delay_s=1, factor=2, max_delay_s=5).delay(n) for n in (1, 2, 4)]
        [1.0, 2.0, 5.0]
    """

    initial_delay_s: float = 5.0
    factor: float = 2.0
    max_delay_s: float = 300.0

    def __post_init__(self) -> None:
        _check_positive(self.initial_delay_s, "initial_delay_s")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")
        if self.max_delay_s < self.initial_delay_s:
            raise ValueError(
                f"max_delay_s must be at least initial_delay_s ({self.initial_delay_s}), "
                f"got {self.max_delay_s}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        exponent = min(max(attempt, 1) - 1, 64)
        return float(min(self.initial_delay_s * self.factor**exponent, self.max_delay_s))


@dataclass(frozen=True)
class NodeConfig:
    """The listening DICOM node.

    Example:
        >>> NodeConfig(port=0)
        Traceback (most recent call last):
        ...
        ValueError: port must be a TCP port in 1..65535, got 0
    """

    ae_title: str = "CTPIPE"
    host: str = "127.0.0.1"
    port: int = 11112
    require_called_aet: bool = True
    allowed_calling_aets: tuple[str, ...] = ()
    max_associations: int = 8
    strict_uids: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title, "ae_title"))
        titles = tuple(
            check_ae_title(t, f"allowed_calling_aets[{i}]")
            for i, t in enumerate(self.allowed_calling_aets)
        )
        object.__setattr__(self, "allowed_calling_aets", titles)
        _check_port(self.port, "port")
        if not self.host:
            raise ValueError("host must be an address to listen on, e.g. 0.0.0.0, got ''")
        if self.max_associations < 1:
            raise ValueError(f"max_associations must be at least 1, got {self.max_associations}")


@dataclass(frozen=True)
class DestinationConfig:
    """Where results are sent: C-STORE (``dimse``) or DICOMweb STOW-RS (``dicomweb``).

    Example:
        >>> DestinationConfig(kind="dimse", ae_title="ORTHANC", port=4242).host
        '127.0.0.1'
        >>> DestinationConfig(kind="dicomweb")
        Traceback (most recent call last):
        ...
        ValueError: url is required for kind dicomweb (STOW-RS base URL, e.g. \
http://127.0.0.1:8042/dicom-web), got None
    """

    kind: Literal["dimse", "dicomweb"]
    ae_title: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    url: str | None = None
    timeout_s: float = 30.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def __post_init__(self) -> None:
        _check_positive(self.timeout_s, "timeout_s")
        if self.kind == "dimse":
            if self.ae_title is None or self.port is None:
                raise ValueError(
                    f"ae_title and port are required for kind dimse, got ae_title "
                    f"{self.ae_title!r} and port {self.port!r}"
                )
            object.__setattr__(self, "ae_title", check_ae_title(self.ae_title, "ae_title"))
            _check_port(self.port, "port")
        elif self.url is None or not _URL.fullmatch(self.url):
            raise ValueError(
                "url is required for kind dicomweb (STOW-RS base URL, e.g. "
                f"http://127.0.0.1:8042/dicom-web), got {self.url!r}"
            )

    def describe(self) -> str:
        """The destination in words, for logs.

        Example:
            >>> DestinationConfig(kind="dimse", ae_title="PACS", port=104).describe()
            'C-STORE PACS@127.0.0.1:104'
        """
        if self.kind == "dimse":
            return f"C-STORE {self.ae_title}@{self.host}:{self.port}"
        return f"STOW-RS {self.url}"


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``ctpipe serve`` needs; see the module docstring for the sections."""

    storage: str
    workflow: str | None = None
    processor: str | None = None
    node: NodeConfig = field(default_factory=NodeConfig)
    completion: CompletionPolicy = field(default_factory=CompletionPolicy)
    destination: DestinationConfig | None = None
    max_process_attempts: int = 3
    poll_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.storage:
            raise ValueError("storage must name the node's work folder, got ''")
        if (self.workflow is None) == (self.processor is None):
            raise ValueError(
                "exactly one of workflow (a workflow file) and processor (module:callable) "
                f"must be set, got workflow {self.workflow!r} and processor {self.processor!r}"
            )
        if self.processor is not None and not _PROCESSOR.fullmatch(self.processor):
            raise ValueError(f"processor must be 'package.module:callable', got {self.processor!r}")
        if self.max_process_attempts < 1:
            raise ValueError(
                f"max_process_attempts must be at least 1, got {self.max_process_attempts}"
            )
        _check_positive(self.poll_interval_s, "poll_interval_s")

    @property
    def storage_path(self) -> Path:
        """The work folder as a path."""
        return Path(self.storage)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<config>") -> ServeConfig:
        """Build from parsed YAML; errors are :class:`ServeConfigError` naming ``source``."""
        return parse_dataclass(cls, data, source=source, error=ServeConfigError)


def load_serve_config(path: str | PathLike[str]) -> ServeConfig:
    """Read a DICOM node configuration file.

    Args:
        path: The YAML file.

    Returns:
        The checked :class:`ServeConfig`.

    Raises:
        ServeConfigError: When the file cannot be read or breaks the schema; the message
            names the file and the key path.

    Example:
        >>> load_serve_config("/nowhere.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ctpipe.pacs.config.ServeConfigError: /nowhere.yaml: cannot read DICOM node config: ...
    """
    return load_yaml_dataclass(ServeConfig, path, error=ServeConfigError, what="DICOM node config")
