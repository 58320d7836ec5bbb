"""The families of out-of-distribution inputs that ``bench_ood_guard.py`` scores.

Each family is its OOD kinds and its normal variants (kinds that should pass the guard),
built from in-distribution base studies by :mod:`ood_inputs`: the tuned inputs
(:func:`ood_studies`), and :data:`FAMILIES`, the held-out one and the nine fixed one at a
time before the guard version named in each flag's help. The kinds and the order of
fixing are described in ``bench_ood_guard.py``'s docstring.

Example:
    >>> sorted(FAMILIES)[:3]
    ['fresh', 'fresh2', 'fresh3']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import ood_inputs

#: A kind of study and how to build it from a base study.
Builder = tuple[str, Callable[[ood_inputs.Study], ood_inputs.Study]]

#: Normal variants of the held-out family (should not be flagged).
HELD_OUT_VARIANTS: tuple[Builder, ...] = (
    ("normal: 20 HU noise", lambda base: ood_inputs.heavy_noise(base, 20.0)),
    ("normal: tighter field of view", ood_inputs.fov_crop),
    ("normal: off centre", ood_inputs.off_centre),
)
#: Normal variants of the fresh family.
FRESH_VARIANTS: tuple[Builder, ...] = (
    ("normal: 10 HU noise", lambda base: ood_inputs.heavy_noise(base, 10.0, seed=5)),
    ("normal: 35 HU noise", lambda base: ood_inputs.heavy_noise(base, 35.0, seed=6)),
    ("normal: body x0.85", lambda base: ood_inputs.resized_body(base, 0.85)),
    ("normal: body x1.1", lambda base: ood_inputs.resized_body(base, 1.1)),
    ("normal: shifted 40 mm", ood_inputs.shifted),
)
#: Normal variants of the fourth family.
FRESH2_VARIANTS: tuple[Builder, ...] = (
    ("normal: mirrored", ood_inputs.mirrored),
    ("normal: smoother kernel", ood_inputs.soft_kernel),
    ("normal: calibration +15 HU", ood_inputs.calibration_drift),
    ("normal: -3024 outside the scan circle", ood_inputs.circle_padding),
    ("normal: field of view x1.15", ood_inputs.wider_fov),
)
#: Normal variants of the fifth family.
FRESH3_VARIANTS: tuple[Builder, ...] = (
    ("normal: calibration -5 HU", lambda base: ood_inputs.calibration_drift(base, -5.0)),
    ("normal: turned 3°", lambda base: ood_inputs.off_centre(base, (0.0, 0.0), 3.0)),
    ("normal: 60 % dose", lambda base: ood_inputs.reduced_dose(base, 0.6)),
    ("normal: slightly sharper kernel", ood_inputs.sharper_kernel),
    ("normal: 1.5 x finer matrix", ood_inputs.finer_matrix),
)
#: The sixth family's OOD kinds and normal variants.
FRESH4_KINDS: tuple[Builder, ...] = (
    ("inverted grey scale", ood_inputs.inverted_greyscale),
    ("byte-swapped", ood_inputs.byte_swapped),
    ("subtraction", ood_inputs.subtraction),
    ("film sheet", ood_inputs.film_mosaic),
    ("synthetic CT", ood_inputs.synthetic_ct),
    ("label map", ood_inputs.label_map),
    ("dose report", ood_inputs.dose_report),
    ("magnified view", ood_inputs.magnified_view),
    ("wrong row length", ood_inputs.wrong_row_length),
    ("sparse view", ood_inputs.sparse_view),
)
FRESH4_VARIANTS: tuple[Builder, ...] = (
    ("normal: ECG electrodes", ood_inputs.ecg_electrodes),
    ("normal: 100 kVp", ood_inputs.kvp_100),
    ("normal: thinner slices", ood_inputs.thinner_slices),
    ("normal: iterative reconstruction", ood_inputs.iterative_recon),
    ("normal: table 20 mm lower", ood_inputs.table_lower),
)
#: The seventh family's.
FRESH5_KINDS: tuple[Builder, ...] = (
    ("read from a late offset", ood_inputs.late_offset),
    ("bit errors", ood_inputs.bit_errors),
    ("two levels superposed", ood_inputs.superposed_levels),
    ("over-smoothed", ood_inputs.over_smoothed),
    ("limited angle", ood_inputs.limited_angle),
    ("inpainted hole", ood_inputs.inpainted_hole),
)
FRESH5_VARIANTS: tuple[Builder, ...] = (
    ("normal: portal venous phase", ood_inputs.venous_enhancement),
    ("normal: matrix twice as fine", ood_inputs.twice_finer_matrix),
    ("normal: a blanket", ood_inputs.blanket),
)
#: The eighth family's.
FRESH6_KINDS: tuple[Builder, ...] = (
    ("blank slices", ood_inputs.blank_slices),
    ("dense venous bolus", ood_inputs.dense_bolus),
    ("preview scaled up", ood_inputs.preview_upscaled),
    ("stretched", ood_inputs.stretched),
    ("band of rows shifted", ood_inputs.shifted_band),
    ("banding", ood_inputs.banding),
)
FRESH6_VARIANTS: tuple[Builder, ...] = (
    ("normal: 140 kVp", ood_inputs.kvp_140),
    ("normal: slimmer patient", ood_inputs.slimmer),
)
#: The ninth family's.
FRESH7_KINDS: tuple[Builder, ...] = (
    ("gamma-mapped values", ood_inputs.gamma_mapped),
    ("CT colonography", ood_inputs.ct_colonography),
    ("posterised values", ood_inputs.posterised),
    ("mirrored half", ood_inputs.mirrored_half),
    ("in a water bath", ood_inputs.water_immersion),
    ("gain field", ood_inputs.gain_field),
)
FRESH7_VARIANTS: tuple[Builder, ...] = (
    ("normal: arms down", ood_inputs.arms_down),
    ("normal: a nasogastric tube", ood_inputs.nasogastric_tube),
)
#: The tenth family's.
FRESH8_KINDS: tuple[Builder, ...] = (
    ("pneumoperitoneum", ood_inputs.pneumoperitoneum),
    ("ascites", ood_inputs.ascites),
    ("white noise texture", ood_inputs.white_noise_texture),
    ("slice-to-slice flicker", ood_inputs.alternating_offset),
    ("biopsy needle (CT fluoroscopy)", ood_inputs.biopsy_needle),
    ("motion blur front to back", ood_inputs.directional_motion_blur),
)
FRESH8_VARIANTS: tuple[Builder, ...] = (
    ("normal: more subcutaneous fat", ood_inputs.more_subcutaneous_fat),
    ("normal: a positioning board", ood_inputs.positioning_board),
)


def ood_studies(
    bases: list[tuple[str | None, ood_inputs.Study]],
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient it was made from, study)`` for every OOD study, one at a time."""
    for kind, build in (
        ("head/neck", ood_inputs.head),
        ("head/neck", ood_inputs.neck),
        ("head/neck", ood_inputs.shepp_logan),
        ("legs", ood_inputs.thighs),
        ("phantom", ood_inputs.abdominal_phantom),
        ("MR", ood_inputs.mr_small),
        ("MR", lambda: ood_inputs.mr_small(3.5)),
    ):
        yield kind, None, build()
    for patient, base in bases:
        yield "MR", patient, ood_inputs.mr_like(base, "t1")
        yield "MR", patient, ood_inputs.mr_like(base, "t2")
        yield "heavy noise", patient, ood_inputs.heavy_noise(base, 150.0)
        yield "metal", patient, ood_inputs.metal_streaks(base)
        yield "wrong HU", patient, ood_inputs.missing_intercept(base)
        yield "wrong HU", patient, ood_inputs.normalised(base)
        yield "legs", patient, ood_inputs.legs_from(base)


def built(
    bases: list[tuple[str | None, ood_inputs.Study]],
    table: tuple[Builder, ...],
    skip_impossible: bool = False,
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient, study)`` of every kind of ``table`` for each base, base by base.

    Args:
        bases: ``(patient, study)`` to build from.
        table: The kinds and their builders.
        skip_impossible: Skip (and say so) a study its builder cannot make of a base (a
            tighter field of view of a body that fills it, a finer matrix of 1 mm pixels).
    """
    for patient, base in bases:
        for kind, build in table:
            try:
                yield kind, patient, build(base)
            except ValueError as error:
                if not skip_impossible:
                    raise
                print(f"skipped: {error}")


def held_out_studies(
    bases: list[tuple[str | None, ood_inputs.Study]],
    contiguous: list[tuple[str, ood_inputs.Study]],
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient, study)`` for the held-out family and the normal variants."""
    pydicom_files = (
        ("head CT (real)", "693_J2KI.dcm"),
        ("head CT (real)", "J2K_pixelrep_mismatch.dcm"),
        ("small FOV", "CT_small.dcm"),
        ("MR (real)", "examples_overlay.dcm"),
        ("NM", "JPEG2000.dcm"),
        ("ultrasound", "examples_rgb_color.dcm"),
    )
    for kind, filename in pydicom_files:
        yield kind, None, ood_inputs.pydicom_image(filename)
    yield "small FOV", None, ood_inputs.lower_leg()
    for patient, base in bases:
        yield "child-sized", patient, ood_inputs.paediatric(base)
        yield "cone-beam", patient, ood_inputs.cone_beam(base)
        yield "display window", patient, ood_inputs.lung_window(base)
        yield "display window", patient, ood_inputs.display_8bit(base)
        yield "contrast +300 HU", patient, ood_inputs.contrast_oversaturated(base)
        yield "PET/SPECT", patient, ood_inputs.emission_map(base, "PET")
        yield "PET/SPECT", patient, ood_inputs.emission_map(base, "SPECT")
        yield "small FOV", patient, ood_inputs.small_fov(base)
        yield "rotated 90°", patient, ood_inputs.rotated_90(base)
    for patient, base in contiguous:
        yield "reformat", patient, ood_inputs.reformat(base, "coronal")
        yield "reformat", patient, ood_inputs.reformat(base, "sagittal")
        yield "slab MIP", patient, ood_inputs.slab_mip(base)
    yield from built(bases, HELD_OUT_VARIANTS, skip_impossible=True)


def fresh_studies(
    bases: list[tuple[str | None, ood_inputs.Study]],
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient, study)`` for the fresh family and its normal variants.

    Neither the tuned nor the held-out family holds these kinds (or these realisations);
    the set was fixed before the guard's second version was designed.
    """
    for filename in ("693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"):
        yield "head CT in a body FOV", None, ood_inputs.head_in_body_fov(filename)
    for patient, base in bases:
        yield "wrong slope", patient, ood_inputs.rescale_slope(base, 2.0)
        yield "wrong slope", patient, ood_inputs.rescale_slope(base, 0.5)
        yield "HU -1000", patient, ood_inputs.hu_shift(base, -1000.0)
        yield "hip metal", patient, ood_inputs.hip_metal(base)
        yield "dental metal", patient, ood_inputs.dental_metal(base)
        yield "motion doubling", patient, ood_inputs.motion_doubling(base)
        yield "truncation", patient, ood_inputs.truncated_fov(base)
        yield "angiography", patient, ood_inputs.angiography(base)
        yield "burned-in mask", patient, ood_inputs.burned_mask(base)
        yield "half body", patient, ood_inputs.half_body(base)
    for patient, base in bases:
        if base.hu.shape[2] >= 8:  # contiguous slices only
            yield "10 mm slab", patient, ood_inputs.thick_slab(base)
    yield from built(bases, FRESH_VARIANTS)


def fresh2_studies(
    bases: list[tuple[str | None, ood_inputs.Study]],
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient, study)`` for the fourth family and its normal variants.

    None of the three earlier families holds these kinds; the set was fixed before the
    guard's third version was designed.
    """
    for patient, base in bases:
        yield "photon starvation", patient, ood_inputs.photon_starvation(base)
        yield "detector rings", patient, ood_inputs.detector_rings(base)
        yield "oral contrast", patient, ood_inputs.oral_contrast(base)
        yield "sharp bone kernel", patient, ood_inputs.sharp_kernel(base)
        yield "couch only", patient, ood_inputs.couch_only(base)
        yield "signed read as unsigned", patient, ood_inputs.pixel_representation_wrap(base)
        yield "zeroed rows", patient, ood_inputs.zeroed_rows(base)
        yield "contrast-filled tube", patient, ood_inputs.contrast_tube(base)
        yield "PET-CT attenuation CT", patient, ood_inputs.attenuation_ct(base)
        yield "40 keV monoenergetic", patient, ood_inputs.monoenergetic_40kev(base)
    for patient, base in bases:
        if base.hu.shape[2] >= 8:  # contiguous slices only
            yield "localizer", patient, ood_inputs.localizer(base)
    yield from built(bases, FRESH2_VARIANTS)


def fresh3_studies(
    bases: list[tuple[str | None, ood_inputs.Study]],
) -> Iterator[tuple[str, str | None, ood_inputs.Study]]:
    """``(kind, patient, study)`` for the fifth family and its normal variants.

    None of the four earlier families holds these kinds; the set was fixed before the
    guard's fourth version was designed.
    """
    for patient, base in bases:
        yield "QA phantom", patient, ood_inputs.qa_phantom(base)
        yield "burned-in annotations", patient, ood_inputs.annotation_text(base)
        yield "iodine map", patient, ood_inputs.iodine_map(base)
        yield "CT myelogram", patient, ood_inputs.myelogram(base)
        yield "prone", patient, ood_inputs.prone(base)
        yield "bone removed", patient, ood_inputs.bone_removed(base)
        yield "bismuth shield", patient, ood_inputs.bismuth_shield(base)
        yield "lossy JPEG", patient, ood_inputs.jpeg_blocks(base)
        yield "pixel spacing missing", patient, ood_inputs.spacing_missing(base)
    for patient, base in bases:
        if base.hu.shape[2] >= 8:  # contiguous slices only
            yield "slab MinIP", patient, ood_inputs.minip_slab(base)
    yield from built(bases, FRESH3_VARIANTS)


def kinds_then_variants(
    kinds: tuple[Builder, ...], variants: tuple[Builder, ...], skip_impossible: bool = False
) -> Callable[..., Iterator[tuple[str, str | None, ood_inputs.Study]]]:
    """The studies of a family made of tables alone, from ``(bases, contiguous)``.

    Every OOD kind of ``kinds`` for each base, then every normal variant of ``variants``
    (:func:`built`; ``skip_impossible`` applies to the variants). The sixth to tenth
    families are such: none of their kinds is in an earlier family, and each was fixed
    before the guard version named in its flag's help.
    """

    def build(bases, _contiguous):
        yield from built(bases, kinds)
        yield from built(bases, variants, skip_impossible)

    return build


#: Every family ``--FAMILY`` scores instead of the tuned inputs: its studies from
#: ``(bases, contiguous)``, its normal variants and its flag's help, oldest first.
FAMILIES = {
    "held-out": (
        held_out_studies,
        HELD_OUT_VARIANTS,
        "score the held-out inputs and normal variants with the frozen guard instead",
    ),
    "fresh": (
        lambda bases, _: fresh_studies(bases),
        FRESH_VARIANTS,
        "score the fresh inputs and normal variants (fixed before the guard's v2)",
    ),
    "fresh2": (
        lambda bases, _: fresh2_studies(bases),
        FRESH2_VARIANTS,
        "score the fourth family and its normal variants (fixed before the guard's v3)",
    ),
    "fresh3": (
        lambda bases, _: fresh3_studies(bases),
        FRESH3_VARIANTS,
        "score the fifth family and its normal variants (fixed before the guard's v4)",
    ),
    "fresh4": (
        kinds_then_variants(FRESH4_KINDS, FRESH4_VARIANTS),
        FRESH4_VARIANTS,
        "score the sixth family and its normal variants (fixed before the guard's v5)",
    ),
    "fresh5": (
        kinds_then_variants(FRESH5_KINDS, FRESH5_VARIANTS, skip_impossible=True),
        FRESH5_VARIANTS,
        "score the seventh family and its normal variants (fixed before any change to v5)",
    ),
    "fresh6": (
        kinds_then_variants(FRESH6_KINDS, FRESH6_VARIANTS),
        FRESH6_VARIANTS,
        "score the eighth family and its normal variants (fixed before the guard's v6)",
    ),
    "fresh7": (
        kinds_then_variants(FRESH7_KINDS, FRESH7_VARIANTS),
        FRESH7_VARIANTS,
        "score the ninth family and its normal variants (fixed before the guard's v7)",
    ),
    "fresh8": (
        kinds_then_variants(FRESH8_KINDS, FRESH8_VARIANTS),
        FRESH8_VARIANTS,
        "score the tenth family and its normal variants (fixed before the guard's v7)",
    ),
}
