"""The SNOMED CT table: TotalSegmentator's 104 names, codes checked against DICOM's tables."""

from __future__ import annotations

import re

import pytest
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._concepts_dict import concepts

from ctpipe.export.terminology import code_table, normalise_name, segment_code

#: The class names of the MONAI Model Zoo's wholeBody_ct_segmentation (TotalSegmentator v1).
TOTALSEGMENTATOR_104 = (
    "spleen kidney_right kidney_left gallbladder liver stomach aorta inferior_vena_cava "
    "portal_vein_and_splenic_vein pancreas adrenal_gland_right adrenal_gland_left "
    "lung_upper_lobe_left lung_lower_lobe_left lung_upper_lobe_right lung_middle_lobe_right "
    "lung_lower_lobe_right vertebrae_L5 vertebrae_L4 vertebrae_L3 vertebrae_L2 vertebrae_L1 "
    "vertebrae_T12 vertebrae_T11 vertebrae_T10 vertebrae_T9 vertebrae_T8 vertebrae_T7 "
    "vertebrae_T6 vertebrae_T5 vertebrae_T4 vertebrae_T3 vertebrae_T2 vertebrae_T1 "
    "vertebrae_C7 vertebrae_C6 vertebrae_C5 vertebrae_C4 vertebrae_C3 vertebrae_C2 "
    "vertebrae_C1 esophagus trachea heart_myocardium heart_atrium_left heart_ventricle_left "
    "heart_atrium_right heart_ventricle_right pulmonary_artery brain iliac_artery_left "
    "iliac_artery_right iliac_vena_left iliac_vena_right small_bowel duodenum colon "
    + " ".join(f"rib_left_{n}" for n in range(1, 13))
    + " "
    + " ".join(f"rib_right_{n}" for n in range(1, 13))
    + " humerus_left humerus_right scapula_left scapula_right clavicula_left clavicula_right "
    "femur_left femur_right hip_left hip_right sacrum face gluteus_maximus_left "
    "gluteus_maximus_right gluteus_medius_left gluteus_medius_right gluteus_minimus_left "
    "gluteus_minimus_right autochthon_left autochthon_right iliopsoas_left iliopsoas_right "
    "urinary_bladder"
).split()

#: No single SNOMED CT concept names these; they get the generic "Tissue" code.
UNCODED = {"portal_vein_and_splenic_vein"}


def _dicom_meanings() -> dict[str, set[str]]:
    meanings: dict[str, set[str]] = {}
    for by_code in concepts["SCT"].values():
        for code, (meaning, _) in by_code.items():
            meanings.setdefault(code, set()).add(meaning)
    return meanings


def test_the_104_names_are_coded_where_snomed_has_them():
    assert len(TOTALSEGMENTATOR_104) == 104 == len(set(TOTALSEGMENTATOR_104))
    for name in TOTALSEGMENTATOR_104:
        code = segment_code(name)
        assert code.is_generic == (name in UNCODED), name
        assert code.category.meaning != "Tissue" or name in UNCODED


def test_codes_from_dicom_tables_match_dicom():
    meanings = _dicom_meanings()
    categories = {next(iter(concepts["SCT"][k])) for k in cid_concepts[7150]["SCT"]}
    checked = 0
    for name, code in code_table().items():
        assert code.category.value in categories, name
        if code.source == "DICOM PS3.16":
            assert code.type.meaning in meanings.get(code.type.value, set()), name
            checked += 1
        else:
            assert code.source == "SNOMED CT" and code.type.value not in meanings, name
        assert re.fullmatch(r"\d{6,18}", code.type.value), name
    assert checked >= 80


def test_laterality_follows_the_name():
    for name in TOTALSEGMENTATOR_104:
        code = segment_code(name)
        side = re.search(r"_(left|right)(_\d+)?$", name)
        if "atrium" in name or "ventricle" in name or "middle_lobe" in name:
            assert code.modifier is None, name  # the concept says the side
        elif side:
            assert code.modifier is not None and code.modifier.meaning.lower() == side.group(1)
        else:
            assert code.modifier is None, name


@pytest.mark.parametrize(
    ("name", "meaning", "side"),
    [
        ("Lung Left", "Lung", "Left"),
        ("spine", "Spine", None),
        ("kidney-right", "Kidney", "Right"),
        ("vertebrae_l3", "L3 vertebra", None),
        ("tumour_left", "Tissue", None),
    ],
)
def test_lookup_normalises_names_and_adds_sides(name, meaning, side):
    code = segment_code(name)
    assert code.type.meaning == meaning
    assert (code.modifier.meaning if code.modifier else None) == side


def test_normalise_name():
    assert normalise_name("  Urinary Bladder ") == "urinary_bladder"
