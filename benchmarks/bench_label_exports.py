"""Time of the label exports on a typical abdominal grid: RTSTRUCT, DICOM-SEG, statistics.

The phantom (:func:`ctpipe.phantom.make_phantom`: liver, spleen, both kidneys, spine,
both lung bases) on a 512 x 512 x ``--slices`` grid of 0.7 x 0.7 x 2.5 mm is written as a
DICOM series; its labels are then exported as an RT Structure Set
(:func:`ctpipe.export.rtstruct.write_rtstruct`, rt-utils contours), as a DICOM
Segmentation (:func:`ctpipe.export.dicom_seg.write_dicom_seg`, highdicom) and as organ
statistics (:func:`ctpipe.organ_statistics.organ_statistics`). Each is timed once; the
RTSTRUCT is read back (:func:`ctpipe.export.rtstruct.read_rtstruct_masks`) and the Dice
of each organ printed, so the timing is of a file that is right.

Run from the repository root with the virtual environment active:

    OMP_NUM_THREADS=1 python benchmarks/bench_label_exports.py [--slices 64]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import pydicom

    from ctpipe.export.dicom_seg import write_dicom_seg
    from ctpipe.export.rtstruct import read_rtstruct_masks, write_rtstruct
    from ctpipe.organ_statistics import organ_statistics
    from ctpipe.phantom import make_phantom, write_phantom

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64)
    args = parser.parse_args()
    phantom = make_phantom(shape=(512, 512, args.slices), spacing=(0.7, 0.7, 2.5))
    names = dict(phantom.label_names)
    with tempfile.TemporaryDirectory() as folder:
        files = write_phantom(folder, phantom)
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files.dicom_files]
        timings = {}
        start = time.perf_counter()
        rtstruct = write_rtstruct(phantom.labels, names, sources, Path(folder) / "rt.dcm")
        timings["rtstruct"] = time.perf_counter() - start
        start = time.perf_counter()
        write_dicom_seg(phantom.labels, names, sources, Path(folder) / "seg.dcm")
        timings["dicom_seg"] = time.perf_counter() - start
        start = time.perf_counter()
        organ_statistics(phantom.labels, phantom.hu, phantom.affine_lps, names)
        timings["statistics"] = time.perf_counter() - start
        masks = read_rtstruct_masks(rtstruct, phantom.shape, phantom.affine_lps)
        size_mb = rtstruct.stat().st_size / 1e6
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"grid 512 x 512 x {args.slices}, 7 organs; RTSTRUCT {size_mb:.1f} MB")
    for name, seconds in timings.items():
        print(f"{name:<11} {seconds:6.2f} s")
    for name, value in names.items():
        truth = phantom.labels == value
        dice = 2 * (masks[name] & truth).sum() / (masks[name].sum() + truth.sum())
        print(f"RTSTRUCT round trip Dice {name:<13} {dice:.4f}")


if __name__ == "__main__":
    main()
