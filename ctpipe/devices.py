"""Devices, named once: where a network computes and where its result is kept.

Every device setting (workflow steps, training, commands) takes ``auto``, ``cpu``,
``cuda`` or ``cuda:N`` (:func:`check_device_setting`), and means one of two things:

* the **compute device**, where the network runs: ``denoise.device``,
  ``segment.sw_device``, ``anomaly.device``, ``inpaint.device``, ``train.device`` and the
  commands' ``--device``/``--sw-device``. ``auto`` is CUDA when available, else the CPU
  (:func:`compute_device`).
* the **output device**, where a result is assembled and kept: ``segment.device`` (the
  labels of a volume are stitched window by window) and ``--device`` of ``ctpipe
  segment``. ``auto`` is the CPU, which keeps a large volume's stitching out of GPU
  memory (:func:`output_device`). The other steps hand their results back on the CPU.

Example:
    >>> output_device("auto"), output_device("cuda:1")
    ('cpu', 'cuda:1')
    >>> compute_device("cpu")
    'cpu'
"""

from __future__ import annotations

import re

__all__ = ["DEVICE_SETTING", "check_device_setting", "compute_device", "output_device"]

#: What a device setting may be.
DEVICE_SETTING = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_setting(name: str, value: str) -> None:
    """Refuse a device setting other than ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Example:
        >>> check_device_setting("train.device", "gpu")
        Traceback (most recent call last):
        ...
        ValueError: train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'
    """
    if not (isinstance(value, str) and DEVICE_SETTING.fullmatch(value)):
        raise ValueError(f"{name} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")


def compute_device(setting: str) -> str:
    """The device a network runs on: ``auto`` is ``cuda`` when available, else ``cpu``."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def output_device(setting: str) -> str:
    """The device a result is assembled on: ``auto`` is ``cpu``."""
    return "cpu" if setting == "auto" else setting
