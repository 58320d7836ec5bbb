"""SNOMED CT codes for segment class names (DICOM-SEG and RTSTRUCT), from a table in the package.

``segment_codes.csv`` (beside this module) maps class names to the codes a DICOM
Segmentation needs: the segmented property category (DICOM CID 7150, e.g. "Anatomical
Structure"), the property type (e.g. SNOMED CT 10200004 "Liver") and, for paired organs,
a laterality modifier (7771000 "Left" / 24028007 "Right"). It covers every class name of
TotalSegmentator's 104-class set (as the MONAI Model Zoo's ``wholeBody_ct_segmentation``
names them) that SNOMED CT has a concept for, ctpipe's own classes and common generic
names. Its ``source`` column says where each code and meaning come from: ``DICOM PS3.16``
(DICOM's own code tables, as pydicom ships them, checked by the tests) or ``SNOMED CT``
(a concept DICOM's tables do not list).

:func:`segment_code` looks a name up after normalising it (lower case, spaces and hyphens
to ``_``). A name the table lacks but that ends in ``_left`` / ``_right`` is looked up
without the suffix and gets the laterality modifier. Anything else (for example
``portal_vein_and_splenic_vein``, which no single SNOMED CT concept names) gets the generic
"Tissue" category and type, with the class name kept as the segment's label and
description.

Example:
    >>> code = segment_code("kidney_left")
    >>> code.type.meaning, code.modifier.meaning, code.is_generic
    ('Kidney', 'Left', False)
    >>> segment_code("Tumour Core").type.meaning, segment_code("Tumour Core").is_generic
    ('Tissue', True)
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from pydicom.sr.coding import Code

__all__ = ["TABLE_NAME", "SegmentCode", "code_table", "normalise_name", "segment_code"]

#: The table's file name inside ``ctpipe.export``.
TABLE_NAME = "segment_codes.csv"

#: Laterality modifiers (SNOMED CT) by name suffix.
_SIDES = {
    "left": Code("7771000", "SCT", "Left"),
    "right": Code("24028007", "SCT", "Right"),
}
_TISSUE = Code("85756007", "SCT", "Tissue")


@dataclass(frozen=True)
class SegmentCode:
    """The codes of one segment class.

    Attributes:
        category: Segmented property category (DICOM CID 7150).
        type: Segmented property type.
        modifier: Laterality modifier of the type, or ``None``.
        source: Where the codes come from (``DICOM PS3.16``, ``SNOMED CT`` or ``generic``).
    """

    category: Code
    type: Code
    modifier: Code | None = None
    source: str = "generic"

    @property
    def is_generic(self) -> bool:
        """True for the "Tissue" fallback of a name the table does not know."""
        return self.source == "generic"


def normalise_name(name: str) -> str:
    """A class name as the table spells it: lower case, ``_`` for spaces and hyphens.

    Example:
        >>> normalise_name(" Kidney-Left ")
        'kidney_left'
    """
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


@functools.lru_cache(maxsize=1)
def code_table() -> Mapping[str, SegmentCode]:
    """The table ``segment_codes.csv``: normalised class name -> :class:`SegmentCode`.

    Example:
        >>> code_table()["vertebrae_l5"].type.value
        '49668003'
    """
    text = resources.files("ctpipe.export").joinpath(TABLE_NAME).read_text(encoding="utf-8")
    table = {}
    for row in csv.DictReader(text.splitlines()):
        modifier = (
            Code(row["modifier_code"], row["modifier_scheme"], row["modifier_meaning"])
            if row["modifier_code"]
            else None
        )
        table[normalise_name(row["name"])] = SegmentCode(
            category=Code(row["category_code"], row["category_scheme"], row["category_meaning"]),
            type=Code(row["type_code"], row["type_scheme"], row["type_meaning"]),
            modifier=modifier,
            source=row["source"],
        )
    return MappingProxyType(table)


def segment_code(name: str) -> SegmentCode:
    """The codes of class ``name`` (see the module's description for the lookup rules).

    Example:
        >>> segment_code("lung_right").type.meaning, segment_code("lung_right").modifier.value
        ('Lung', '24028007')
    """
    table = code_table()
    key = normalise_name(name)
    if key in table:
        return table[key]
    match = re.fullmatch(r"(.+)_(left|right)", key)
    if match and match.group(1) in table and table[match.group(1)].modifier is None:
        base = table[match.group(1)]
        return SegmentCode(base.category, base.type, _SIDES[match.group(2)], base.source)
    return SegmentCode(_TISSUE, _TISSUE)
