"""The out-of-distribution guard: slice and study AUROC, detection per kind, false alarms.

**In-distribution (ID) studies** are normal-dose CT of patients the VAE never trained on,
each scored by a calibration that did not see it:

* AAPM patient L192 (D45 and B30 kernels), held out of training *and* of the shipped
  calibration (the script refuses to run otherwise), scored by the shipped calibration;
* the three never-trained patients of the calibration (``totalseg``, ``radiomics_lung``,
  ``dcmqi``), each scored by a calibration refitted without it, with the same settings
  (leave one patient out).

**Out-of-distribution (OOD) studies** are built by ``benchmarks/ood_inputs.py``: phantoms
(a head, a neck, two thighs, ctpipe's abdominal phantom, Shepp-Logan in HU), pydicom's
``MR_small.dcm`` (as given, and claimed at 3.5 mm pixels), and from each of L192 D45,
L192 B30, ``radiomics_lung`` and ``dcmqi``: MR-like T1 and T2 intensity maps, heavy noise
(150 HU), metal with streaks, the intercept left out, an image normalised to [0, 1], and
thigh-like discs cut out of it. A study made from a patient is scored by the calibration
that did not see that patient.

**Scores**, each fitted the same way (the shipped guard's settings) on the same slices:

* **guard**: the shipped guard's statistics (:data:`ctpipe.anomaly.guard.GUARD_STATISTICS`);
* **guard + KL**: the same with the KL of the posterior;
* **negative ELBO**: the seed's score alone, as a z-score (higher: more OOD);
* **VAE reconstruction only** and **input statistics only**: each group of the guard alone.

Slice AUROC pools every scored slice (ID against OOD); study AUROC scores each study by
its median. At each calibration's study threshold it also reports which studies are
flagged.

**Held-out inputs** (``--held-out``): the figures above were reached while the guard's
statistics, calibration settings and threshold were being chosen with those OOD inputs in
view. ``--held-out`` scores instead a second family of ``ood_inputs`` that played no part
in those choices (child-sized bodies, reformats, cone-beam artifacts, display-window and
8-bit images, contrast oversaturation, slab MIPs, PET/SPECT-like maps, small fields of
view, turned slices, real head CT, MR, NM and ultrasound images from pydicom) and normal
variants that should pass (20 HU of noise, a tighter field of view, the patient off
centre), with the frozen guard: the stored calibration and threshold for studies made
from L192 or from scratch, and for those made from a calibration patient the refit that
leaves it out, with the shipped settings (as above). Each held-out study is scored on at
most 16 slices, spread evenly; the normal studies are the same 5 as above.

**Fresh inputs** (``--fresh``): a third family, fixed (committed) before the guard's
second version was designed and scored once with it: wrong rescale slopes (2, 0.5), HU
shifted by -1000, hip prostheses with beam hardening between them, dental-like metal,
motion doubling, truncation at the field of view's edge, an angiography-like arterial
phase, a black mask burned in, one half of the body, 10 mm average slabs, and pydicom's two
real head CTs resampled into a 410 mm body field of view; normal variants that should pass:
10 and 35 HU of added noise, the body scaled by 0.85 and 1.1, the patient 50 mm off centre.
Scored like the held-out family (same calibrations, at most 16 slices per study).

**Fourth family** (``--fresh2``): fixed (committed) before the guard's third version was
designed and scored once with it; none of its kinds is in an earlier family: photon
starvation streaks, strong detector-fault rings, dense oral contrast in bowel loops, a sharp
bone kernel, the couch alone (slices past the patient), signed values read as unsigned, stripes
of zeroed rows, a contrast-filled tube, a PET-CT attenuation CT on 4 mm pixels, a 40 keV
monoenergetic image, and a localizer presented as an axial slice; normal variants that should
pass: the image mirrored, a smoother kernel, a calibration 15 HU off, -3024 outside the scan
circle, a 15 % wider field of view. Scored like the held-out family.

**Fifth family** (``--fresh3``): fixed (committed) before the guard's fourth version was
designed and scored once with it; none of its kinds is in an earlier family: a QA water
phantom with rods, burned-in annotations, a dual-energy iodine map, a CT myelogram, a prone
scan (body front to back), a 10 mm slab MinIP, a CTA with the bones removed, a bismuth
breast shield, strong lossy JPEG compression, and missing pixel spacing read as 1 mm;
normal variants that should pass: the calibration 5 HU off, the patient turned by 3
degrees, 60 % of the dose, a slightly sharper kernel, a 1.5 times finer matrix. Scored like
the held-out family.

**Sixth family** (``--fresh4``): fixed (committed) before the guard's fifth version was
designed, to be scored once with it; none of its kinds is in an earlier family: an inverted
grey scale (MONOCHROME1 read as MONOCHROME2), byte-swapped values (big endian read as
little), a subtraction series, a film sheet of 3 x 3 slices, an MR-derived synthetic CT, a
tissue label map, a dose report screen capture, a magnified view saved with its old pixel
spacing, pixel data read with rows one pixel too long, and a sparse-view reconstruction (60
views); normal variants that should pass: ECG electrodes and leads, 100 kVp, thinner slices
(2/3 of the thickness), a moderate iterative reconstruction, the table 20 mm lower. Scored
like the held-out family.

**Seventh family** (``--fresh5``): fixed (committed) before any change to the guard's fifth
version, to be scored once with it; none of its kinds is in an earlier family: pixel data
read from an offset half a row late (the image wrapped), bit errors (0.2 % of the pixels
random), two levels of the body superposed, an image smoothed by a 5 mm Gaussian, a
limited-angle reconstruction (120 degrees), a disc of the body filled by biharmonic
inpainting; normal variants that should pass: a portal venous phase, a matrix twice as
fine (bases of pixels up to 1 mm), a blanket over the body. Scored like the held-out family.

**Eighth family** (``--fresh6``): fixed (committed) before the guard's sixth version was
designed; none of its kinds is in an earlier family: blank slices (every pixel -1024 HU), a
dense venous contrast bolus with its streaks, a 4x preview scaled up again, non-square
pixels declared square (the body 1.3 times taller), a band of rows shifted sideways,
detector banding (+-15 HU stripes); normal variants that should pass: 140 kVp, a patient
10 % slimmer. Scored like the held-out family.

**Ninth family** (``--fresh7``): fixed (committed) before the guard's seventh version was
designed; none of its kinds is in an earlier family: gamma-mapped values (a VOI LUT with
gamma 0.5 saved as HU), CT colonography (4-6 air-filled loops of colon), posterised values
(32 HU steps), a mirrored half (one half of the body replaced by the other, flipped), the
patient in a water bath, a gain field (a smooth 10 % inhomogeneity of attenuation, as an MR
bias field); normal variants that should pass: the arms down beside the body, a nasogastric
tube. Scored like the held-out family.

**Tenth family** (``--fresh8``): fixed (committed) before the guard's seventh version was
designed; none of its kinds is in an earlier family: pneumoperitoneum (free air under the
front abdominal wall), ascites (fluid filling the abdomen's periphery), a white noise texture
(the base's correlated noise swapped for white noise of its level), slice-to-slice flicker
(+-25 HU on alternating slices), a biopsy needle in a half-dose CT-fluoroscopy image, motion
blur front to back (a 10 mm box along ``j``); normal variants that should pass: 15 mm more
subcutaneous fat, a radiotherapy positioning board under the patient. Scored like the
held-out family.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_ood_guard.py [--weights PT] [--config YAML] [--json OUT]
    python benchmarks/bench_ood_guard.py --held-out [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh2 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh3 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh4 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh5 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh6 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh7 [--json OUT]
    python benchmarks/bench_ood_guard.py --fresh8 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))

import ood_inputs  # noqa: E402  (a module beside this script)

from ctpipe.anomaly.guard_calibration import GUARD_STATISTICS  # noqa: E402
from ctpipe.anomaly.guard_statistics import INPUT_STATISTICS  # noqa: E402

#: The patient held out of training and calibration: (name, path under DATA).
HELD_OUT = (
    ("L192 D45", "aapm_ldct_pairs/L192/full_3mm_D45"),
    ("L192 B30", "aapm_ldct_pairs/L192/full_3mm_B30"),
)
#: Calibration sources of patients never trained on: scored leave-one-patient-out.
UNSEEN = ("totalseg", "radiomics_lung", "dcmqi")
#: Calibration sources whose slices also make OOD studies.
BASES = ("radiomics_lung", "dcmqi")
#: Calibration sources with contiguous slices: reformats and slab MIPs of them.
CONTIGUOUS = ("radiomics_lung", "totalseg")
#: Held-out studies are scored on at most this many slices, spread evenly.
HELD_OUT_SLICES = 16
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
#: Held-out kinds whose values are not CT numbers at all.
NOT_CT_VALUES = ("MR (real)", "NM", "ultrasound", "PET/SPECT")
#: The other scores (statistics, or the negative ELBO alone).
ABLATIONS = {
    "guard + KL": (*GUARD_STATISTICS[:2], "log_kl", *GUARD_STATISTICS[2:]),
    "guard v1 (five statistics)": GUARD_STATISTICS[:5],
    "guard v2 (eleven statistics)": GUARD_STATISTICS[:11],
    "guard v4 (eighteen statistics)": GUARD_STATISTICS[:18],
    "VAE reconstruction only": ("log_rec_coarse", "log_rec_detail"),
    "input statistics only": INPUT_STATISTICS,
}


def check_held_out(record: dict, relative: str) -> None:
    """Refuse an ID source that the model's training config does not hold out."""
    data = record.get("config", {}).get("data")
    if not data:
        return
    target = (DATA / relative).resolve()
    for source in data["holdout"]:
        held = Path(source["path"])
        held = (held if held.is_absolute() else REPO / held).resolve()
        if held == target or held in target.parents:
            return
    sys.exit(f"{target} is not held out by the model's training config: refusing to score it")


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


class Scorer:
    """One score, fitted on the calibration slices with one patient left out or none."""

    def __init__(self, names, pool, columns, settings) -> None:
        from ctpipe.anomaly.guard_calibration import GuardCalibration

        self.index = [names.index(c) for c in columns]
        self.columns = columns
        self.fits = {}
        for left_out in (None, *UNSEEN):
            kept = [k for k in pool if k != left_out]
            values = np.concatenate([pool[k] for k in kept])
            groups = [k for k in kept for _ in range(len(pool[k]))]
            self.fits[left_out] = GuardCalibration.fit(
                values[:, self.index], columns, groups=groups, **settings
            )

    def __call__(self, values: np.ndarray, left_out: str | None) -> np.ndarray:
        return self.fits[left_out].distance(values[:, self.index])

    def threshold(self, left_out: str | None) -> float:
        return self.fits[left_out].study_threshold


class ElboScorer:
    """The negative ELBO as a z-score against the same calibration slices."""

    def __init__(self, names, pool) -> None:
        self.column = names.index("neg_elbo")
        self.moments = {}
        for left_out in (None, *UNSEEN):
            values = np.concatenate([v[:, self.column] for k, v in pool.items() if k != left_out])
            self.moments[left_out] = (values.mean(), values.std())

    def __call__(self, values: np.ndarray, left_out: str | None) -> np.ndarray:
        mean, std = self.moments[left_out]
        return (values[:, self.column] - mean) / std

    def threshold(self, left_out: str | None) -> float:
        return float("nan")


def main() -> int:
    from ctpipe.anomaly.guard import OODGuard
    from ctpipe.checkpoints.vae import load_vae
    from ctpipe.training.vae.config import load_vae_config
    from ctpipe.training.vae.data import read_series, source_volumes
    from ctpipe.weights import DEFAULT_VAE, weights_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(weights_path(DEFAULT_VAE)))
    parser.add_argument(
        "--config", default=str(REPO / "workflows/training/vae_ct128_cpu_stage2.yaml")
    )
    parser.add_argument("--json", help="write every statistic and score here")
    for family, (_, _, help_text) in FAMILIES.items():
        parser.add_argument(f"--{family}", action="store_true", help=help_text)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load_vae(args.weights)
    guard = OODGuard(model, max_slices=None)
    config = load_vae_config(args.config)
    started = time.perf_counter()
    volumes = {name: (hu, spacing) for name, hu, spacing in source_volumes(config.data.calibration)}
    for name, _ in HELD_OUT:
        if any("L192" in str(s.path) for s in config.data.calibration):
            sys.exit(f"{name}: L192 is in the calibration sources: refusing to score it")
    pool = {name: guard.statistics(hu, spacing).values for name, (hu, spacing) in volumes.items()}
    names = guard.statistics(np.full((8, 8, 1), -1000.0, np.float32), (1, 1, 1)).names
    shipped = guard.calibration
    keys = ("shrinkage", "min_std", "slice_quantile", "study_quantile")
    settings = {k: shipped.settings[k] for k in keys}
    guard_scorer = Scorer(names, pool, shipped.statistics, settings)
    refit = guard_scorer.fits[None]
    if not np.allclose(refit.mean, shipped.mean) or not np.isclose(
        refit.study_threshold, shipped.study_threshold
    ):
        print("note: the stored calibration differs from a refit on --config's sources")
    scorers = {"guard (shipped)": guard_scorer, "negative ELBO (z)": ElboScorer(names, pool)}
    for label, columns in ABLATIONS.items():
        scorers[label] = Scorer(names, pool, columns, settings)
    studies = []
    for name, relative in HELD_OUT:
        check_held_out(model.checkpoint_record, relative)
        hu, spacing = read_series(DATA / relative, allow_irregular=True)
        studies.append(("ID", None, ood_inputs.Study(name, hu, spacing)))
    bases = [(None, s) for _, _, s in studies]
    bases += [(name, ood_inputs.Study(name, *volumes[name])) for name in BASES]
    chosen = [family for family in FAMILIES if getattr(args, family.replace("-", "_"))]
    if chosen:
        family = chosen[-1]  # the newest family when several are named
        header = guard_header(args.weights, shipped, family)
        return held_out(
            guard, guard_scorer, shipped, pool, studies, bases, volumes, args.json, family, header
        )
    rows = []

    def add(kind: str, left_out: str | None, name: str, values: np.ndarray) -> None:
        scores = {k: scorer(values, left_out).tolist() for k, scorer in scorers.items()}
        study = float(np.median(scores["guard (shipped)"]))
        z = np.median(guard_scorer.fits[left_out].z_scores(values[:, guard_scorer.index]), 0)
        top = np.argsort(-np.abs(z))[:2]
        rows.append(
            {
                "name": name,
                "kind": kind,
                "calibration": "shipped" if left_out is None else f"without {left_out}",
                "slices": int(values.shape[0]),
                "study_score": study,
                "flagged": study > guard_scorer.threshold(left_out),
                "why": ", ".join(f"{shipped.statistics[i]} {z[i]:+.1f} sd" for i in top),
                "scores": scores,
                "statistics": values.tolist(),
            }
        )

    for kind, left_out, study in studies:
        add(kind, left_out, study.name, guard.statistics(study.hu, study.spacing).values)
    for name in UNSEEN:
        add("ID", name, f"{name} (left out)", pool[name])
    for kind, left_out, study in ood_studies(bases):
        add(kind, left_out, study.name, guard.statistics(study.hu, study.spacing).values)
    seconds = time.perf_counter() - started
    speed = _speed(guard, volumes["radiomics_lung"])
    print_report(rows, scorers, shipped, seconds, speed)
    if args.json:
        dump = {**guard_header(args.weights, shipped, "tuned"), "studies": rows}
        dump["all_statistics"] = list(names)
        Path(args.json).write_text(json.dumps(dump), encoding="utf-8")
    return 0


def guard_header(weights: str, shipped, family: str) -> dict:
    """What a JSON report was scored with: the family, the weights file and its guard.

    ``benchmarks/guard_summary.py`` pools reports only when their headers agree.
    """
    import hashlib

    return {
        "family": family,
        "weights": Path(weights).name,
        "weights_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
        "statistics": list(shipped.statistics),
        "study_threshold": float(shipped.study_threshold),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def held_out(
    guard,
    guard_scorer,
    shipped,
    pool,
    studies,
    bases,
    volumes,
    json_path,
    family="held-out",
    header=None,
) -> int:
    """Score the held-out (or fresh) family and its normal variants with the frozen guard."""
    from ctpipe.anomaly.guard import OODGuard

    started = time.perf_counter()
    guard_scorer.fits[None] = shipped  # the stored calibration, not a refit
    sampled = OODGuard(guard.model, shipped, max_slices=HELD_OUT_SLICES)
    bases = [*bases, ("totalseg", ood_inputs.Study("totalseg", *volumes["totalseg"]))]
    contiguous = [(name, ood_inputs.Study(name, *volumes[name])) for name in CONTIGUOUS]

    def add(kind: str, left_out: str | None, name: str, values: np.ndarray) -> None:
        fit = guard_scorer.fits[left_out]
        rows.append(_held_out_row(fit, shipped, kind, left_out, name, values))

    def columns(scoring_guard, study: ood_inputs.Study) -> np.ndarray:
        return scoring_guard.statistics(study.hu, study.spacing).select(shipped.statistics)

    rows: list[dict] = []
    for kind, _, study in studies:
        add(kind, None, study.name, columns(guard, study))
    for name in UNSEEN:
        add("ID", name, f"{name} (left out)", pool[name][:, guard_scorer.index])
    build, variants, _ = FAMILIES[family]
    normal_kinds = [kind for kind, _ in variants]
    family_studies = build(bases, contiguous)
    for kind, left_out, study in family_studies:
        add(kind, left_out, study.name, columns(sampled, study))
    print_held_out(rows, shipped, time.perf_counter() - started, normal_kinds, family)
    if json_path:
        dump = {**(header or {"family": family}), "studies": rows}
        Path(json_path).write_text(json.dumps(dump), encoding="utf-8")
    return 0


def _held_out_row(fit, shipped, kind, left_out, name, values) -> dict:
    """One study's guard scores under its calibration ``fit`` and under the stored one."""
    scores = fit.distance(values)
    z = np.median(fit.z_scores(values), axis=0)
    top = np.argsort(-np.abs(z))[:2]
    stored = float(np.median(shipped.distance(values)))
    return {
        "name": name,
        "kind": kind,
        "calibration": "shipped" if left_out is None else f"without {left_out}",
        "slices": int(values.shape[0]),
        "study_score": float(np.median(scores)),
        "flagged": bool(np.median(scores) > fit.study_threshold),
        "stored_score": stored,
        "stored_flagged": stored > shipped.study_threshold,
        "why": ", ".join(f"{shipped.statistics[i]} {z[i]:+.1f} sd" for i in top),
        "scores": scores.tolist(),
        "statistics": values.tolist(),
    }


def _aurocs(negatives: list[dict], positives: list[dict]) -> tuple[float, float]:
    """Slice and study AUROC of the guard's scores, positives against negatives.

    A row's study score is the median of its slice scores, as
    :func:`guard_summary.slice_and_study_auroc` takes it.
    """
    from guard_summary import slice_and_study_auroc

    return slice_and_study_auroc(
        [np.asarray(r["scores"]) for r in negatives], [np.asarray(r["scores"]) for r in positives]
    )


def print_held_out(rows, shipped, seconds, normal_kinds, family="held-out") -> None:
    ids = [r for r in rows if r["kind"] == "ID"]
    normals = [r for r in rows if r["kind"] in normal_kinds]
    oods = [r for r in rows if r not in ids and r not in normals]
    print(
        f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores"
    )
    print(f"date: {time.strftime('%Y-%m-%d')}; frozen guard: {', '.join(shipped.statistics)}")
    print(f"stored study threshold: {shipped.study_threshold:.2f}")
    for label, group in (("ID", ids), (f"{family} OOD", oods), ("normal variants", normals)):
        print(f"{label}: {len(group)} studies, {sum(r['slices'] for r in group)} slices")
    print(f"time (building and scoring): {seconds:.0f} s\n")
    print(f"| {family} comparison | slice AUROC | study AUROC |")
    print("|---|---:|---:|")
    small_ct = [r for r in oods if r["name"].startswith("CT_small.dcm")]
    others = [r for r in oods if r not in small_ct]
    ct_like = [r for r in oods if r["kind"] not in NOT_CT_VALUES]
    for label, negatives, positives in (
        (f"{family} OOD vs the normal studies", ids, oods),
        (f"{family} OOD vs the normal studies and the normal variants", ids + normals, oods),
        ("the same, CT_small.dcm counted as normal", ids + small_ct, others),
        (f"only {family} studies with CT-like values vs the normal studies", ids, ct_like),
        ("normal variants vs the normal studies (0.5: alike)", ids, normals),
    ):
        slice_auc, study_auc = _aurocs(negatives, positives)
        print(f"| {label} | {slice_auc:.3f} | {study_auc:.3f} |")
    print("\n| kind | studies | flagged | flagged (stored calibration) | study AUROC | scores |")
    print("|---|---:|---:|---:|---:|---|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        scores = [r["study_score"] for r in group]
        auc = "" if kind == "ID" else f"{_aurocs(ids, group)[1]:.3f}"
        print(
            f"| {kind} | {len(group)} | {sum(r['flagged'] for r in group)} | "
            f"{sum(r['stored_flagged'] for r in group)} | {auc} | "
            f"{min(scores):.1f}-{max(scores):.1f} |"
        )
    false_alarms = sum(r["flagged"] for r in normals)
    print(f"\nfalse-positive rate on the normal variants: {false_alarms}/{len(normals)}")
    print_study_table(rows)


def _speed(guard, lung) -> float:
    """Seconds of the workflow's guard (64 slices at most) on the 48-slice lung CT."""
    from ctpipe.anomaly.guard import OODGuard

    workflow_guard = OODGuard(guard.model, guard.calibration, max_slices=64)
    started = time.perf_counter()
    workflow_guard.score(*lung)
    return time.perf_counter() - started


def print_report(rows, scorers, shipped, seconds, speed) -> None:
    from ctpipe.anomaly.auroc import auroc

    ids = [r for r in rows if r["kind"] == "ID"]
    oods = [r for r in rows if r["kind"] != "ID"]
    cores = os.cpu_count()
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, {cores} cores")
    print(f"calibration: {'; '.join(shipped.sources)}")
    print(f"statistics: {', '.join(shipped.statistics)}; settings: {dict(shipped.settings)}")
    slices = sum(r["slices"] for r in ids), sum(r["slices"] for r in oods)
    print(f"ID: {len(ids)} studies, {slices[0]} slices; ", end="")
    print(f"OOD: {len(oods)} studies, {slices[1]} slices")
    print(f"scoring time: {seconds:.0f} s; guard on the 48-slice lung CT: {speed:.2f} s\n")
    print("| score | slice AUROC | study AUROC |")
    print("|---|---:|---:|")
    for key in scorers:
        id_slices = np.concatenate([r["scores"][key] for r in ids])
        ood_slices = np.concatenate([r["scores"][key] for r in oods])
        labels = np.r_[np.zeros(id_slices.size), np.ones(ood_slices.size)]
        slice_auc = auroc(np.r_[id_slices, ood_slices], labels)
        studies = [np.median(r["scores"][key]) for r in ids + oods]
        study_auc = auroc(np.asarray(studies), np.r_[np.zeros(len(ids)), np.ones(len(oods))])
        print(f"| {key} | {slice_auc:.3f} | {study_auc:.3f} |")
    print(f"\nAt the study threshold (shipped: {shipped.study_threshold:.2f}):\n")
    print("| kind | studies | flagged |")
    print("|---|---:|---:|")
    for kind in dict.fromkeys(r["kind"] for r in rows):
        group = [r for r in rows if r["kind"] == kind]
        print(f"| {kind} | {len(group)} | {sum(r['flagged'] for r in group)} |")
    print_study_table(rows)


def print_study_table(rows) -> None:
    """One line per study: kind, calibration, slices, guard score, verdict, largest z."""
    print("\n| study | kind | calibration | slices | guard score | flagged | largest z |")
    print("|---|---|---|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['kind']} | {r['calibration']} | {r['slices']} | "
            f"{r['study_score']:.1f} | {'yes' if r['flagged'] else 'no'} | {r['why']} |"
        )


if __name__ == "__main__":
    sys.exit(main())
