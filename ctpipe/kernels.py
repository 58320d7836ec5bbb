"""Reconstruction kernels: which are sharp and which are smooth.

A CT image's noise texture and edge profile follow its reconstruction kernel (DICOM
ConvolutionKernel, (0018,1210)). ctpipe sorts kernels into two families, as the AAPM Low
Dose CT Grand Challenge data has them (Siemens D45 sharp, B30 smooth): the low-dose
simulator picks its FBP filter by family, the denoiser's training balances the families,
and a kernel-matched denoiser (:mod:`ctpipe.nets.kernel_matched`) runs the network of the
family.

Vendor names: Siemens kernels are a letter or two and a sharpness number (``B30f``,
``D45f``, ``Br40``): 40 and above are sharp. GE names its sharp kernels (``BONE``,
``BONEPLUS``, ``LUNG``, ``EDGE``, ``DETAIL``); Philips' sharp ones are the single letters
``D``, ``E``, ``L`` and ``Y`` (and two-letter variants such as ``YA``). Every other name
(``STANDARD``, ``SOFT``, ``B``, ``FC13``) is smooth.

Example:
    >>> [kernel_family(k) for k in ("D45f", "B30f", "STANDARD", "BONE", "", None)]
    ['sharp', 'smooth', 'smooth', 'sharp', None, None]
"""

from __future__ import annotations

import re

__all__ = ["FAMILIES", "SHARP", "SMOOTH", "kernel_family"]

#: The family of sharp kernels (D45, BONE, LUNG ...).
SHARP = "sharp"
#: The family of smooth kernels (B30, STANDARD, SOFT ...).
SMOOTH = "smooth"
#: Both families, sharp first.
FAMILIES = (SHARP, SMOOTH)

#: Siemens: one or two letters, the sharpness number, an optional letter, more values.
_SIEMENS = re.compile(r"[A-Z]{1,2}(\d{2})[A-Z]?(\\.*)?")
#: GE's sharp kernels by name.
_GE_SHARP = frozenset({"BONE", "BONEPLUS", "LUNG", "EDGE", "DETAIL", "SHARP"})
#: Philips' sharp kernels by first letter (names of one or two letters).
_PHILIPS_SHARP = frozenset("DELY")
#: Siemens sharpness numbers from this one up are sharp.
_SIEMENS_SHARP_FROM = 40


def kernel_family(kernel: str | None) -> str | None:
    """``sharp`` or ``smooth``: the family of a ConvolutionKernel; ``None`` when it is empty.

    Args:
        kernel: The ConvolutionKernel value (case and surrounding spaces do not matter).

    Returns:
        :data:`SHARP`, :data:`SMOOTH`, or ``None`` for an empty or missing kernel (NIfTI
        and other sources without the tag).

    Example:
        >>> kernel_family("Br40d"), kernel_family(" fc13 "), kernel_family("YA")
        ('sharp', 'smooth', 'sharp')
    """
    name = str(kernel or "").strip().upper()
    if not name:
        return None
    siemens = _SIEMENS.fullmatch(name)
    if siemens:
        return SHARP if int(siemens.group(1)) >= _SIEMENS_SHARP_FROM else SMOOTH
    if name in _GE_SHARP or (len(name) <= 2 and name[0] in _PHILIPS_SHARP):
        return SHARP
    return SMOOTH
