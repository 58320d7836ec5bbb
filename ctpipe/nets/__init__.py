"""Networks: denoisers from their papers (RED-CNN, REDNet); segmenters come from MONAI.

``kernel_matched`` holds one denoiser per reconstruction-kernel family.

Build a denoiser by name with :func:`build_denoiser`; each name maps to its module, which is
imported only then.

Example:
    >>> model = build_denoiser("redcnn", filters=8)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from ctpipe.nets.base import Denoiser

#: Denoiser name -> (module, class).
DENOISERS = {
    "redcnn": ("ctpipe.nets.redcnn", "REDCNN"),
    "rednet": ("ctpipe.nets.rednet", "REDNet"),
    "kernel_matched": ("ctpipe.nets.kernel_matched", "KernelMatchedDenoiser"),
}


def build_denoiser(name: str, **kwargs: Any) -> Denoiser:
    """Build a denoiser by name (``redcnn``, ``rednet``, ``kernel_matched``) with its arguments.

    Raises:
        ValueError: Unknown name (the known ones are listed).
    """
    key = name.lower()
    if key not in DENOISERS:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(sorted(DENOISERS))}")
    module, cls = DENOISERS[key]
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = ["DENOISERS", "Denoiser", "build_denoiser"]
