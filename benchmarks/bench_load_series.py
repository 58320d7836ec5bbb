"""Benchmark: load the 134-slice pancreas CT series with ctpipe, SimpleITK and plain pydicom.

Every method goes from a folder path to a float32 HU volume, file discovery included:

* ``ctpipe read_dicom_volume``: ctpipe's discovery (headers of every file), series
  selection, sort along the slice normal, geometry checks, per-slice HU.
* ``ctpipe load_ct (MONAI)``: the same through ``monai.transforms.LoadImage`` into a
  MetaTensor (what a MONAI pipeline pays).
* ``SimpleITK``: ``ImageSeriesReader.GetGDCMSeriesFileNames(folder)`` then ``Execute()``
  with float32 output, then ``GetArrayFromImage``.
* ``pydicom naive loop``: ``dcmread`` every file of the folder (non-DICOM ones are refused
  by pydicom and dropped), sort by ``ImagePositionPatient[2]``, stack
  ``pixel_array * slope + intercept`` as float32. No checks of any kind.

Each method is run once to warm up (so the OS file cache holds the series for all), then
the methods are timed in interleaved rounds (the order rotates each round so none always
runs first), with a ``gc.collect()`` before each timed run. The arrays of all methods
are checked to be identical before timing, so the comparison is between readers that
produce the same result.

Run from the repository root::

    python benchmarks/bench_load_series.py [--repeats 7] [--data FOLDER]

The series is looked for at ``<repo>/../shared/data/pancreas_ct_series`` (or under
``$CTPIPE_SHARED_DATA``); ``--data`` names the series folder directly.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SERIES_NAME = "pancreas_ct_series"
EXPECTED_SHAPE = (512, 512, 134)  # (i, j, k)
REFERENCE = "SimpleITK"

# Benchmark the working tree's ctpipe, whether or not the package is installed.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def default_series_folder() -> Path:
    """The pancreas series under $CTPIPE_SHARED_DATA or <repo>/../shared/data."""
    shared = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
    return shared / SERIES_NAME


def load_ctpipe(folder: Path) -> np.ndarray:
    """Ctpipe's own reader; returns (i, j, k)."""
    from ctpipe.io.dicom_volume import read_dicom_volume

    return read_dicom_volume(folder).hu


def load_ctpipe_monai(folder: Path) -> np.ndarray:
    """Ctpipe through MONAI LoadImage (MetaTensor); returns (i, j, k)."""
    from ctpipe.io.reader import load_ct

    image = load_ct(folder)
    return image.numpy()


def load_simpleitk(folder: Path) -> np.ndarray:
    """SimpleITK's series reader, discovery included; returns its (k, j, i) array."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(reader.Execute())


def load_pydicom_naive(folder: Path) -> np.ndarray:
    """Read every file, sort by z, stack HU; returns (k, j, i)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for path in sorted(folder.iterdir()):
        try:
            datasets.append(pydicom.dcmread(path))
        except InvalidDicomError:
            continue  # LICENSE, Citations
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [
            ds.pixel_array.astype(np.float32) * np.float32(ds.RescaleSlope)
            + np.float32(ds.RescaleIntercept)
            for ds in datasets
        ]
    )


#: name -> (loader, transpose that brings its array to (i, j, k)).
METHODS: dict[str, tuple[Callable[[Path], np.ndarray], tuple[int, int, int]]] = {
    "ctpipe read_dicom_volume": (load_ctpipe, (0, 1, 2)),
    "ctpipe load_ct (MONAI)": (load_ctpipe_monai, (0, 1, 2)),
    "SimpleITK": (load_simpleitk, (2, 1, 0)),
    "pydicom naive loop": (load_pydicom_naive, (2, 1, 0)),
}


def machine_info() -> list[str]:
    """CPU, core count, load and library versions."""
    import pydicom
    import SimpleITK as sitk

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"CPU: {cpu}",
        f"cores: {os.cpu_count()} logical (usable by this process: "
        f"{len(os.sched_getaffinity(0))}), load average: {load}",
        f"OS: {platform.platform()}",
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"pydicom {pydicom.__version__}, SimpleITK {sitk.Version.VersionString()} "
        f"(ITK threads: {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()})",
    ]


def check_same_hu(folder: Path) -> dict[str, float]:
    """Load once with every method (the warm-up) and require identical (i, j, k) HU arrays."""
    arrays: dict[str, np.ndarray] = {}
    warm: dict[str, float] = {}
    for name, (load, axes) in METHODS.items():
        start = time.perf_counter()
        array = load(folder)
        warm[name] = time.perf_counter() - start
        arrays[name] = np.asarray(array).transpose(axes)
    reference = arrays[REFERENCE]
    for name, array in arrays.items():
        if array.shape != EXPECTED_SHAPE or array.dtype != np.float32:
            sys.exit(f"{name}: got {array.shape} {array.dtype}, expected {EXPECTED_SHAPE} float32")
        if not np.array_equal(array, reference):
            diff = np.abs(array - reference).max()
            sys.exit(f"{name} differs from {REFERENCE} (max |diff| {diff} HU): not comparable")
    return warm


def time_methods(folder: Path, repeats: int) -> dict[str, list[float]]:
    """Time every method ``repeats`` times in interleaved, rotating rounds."""
    names = list(METHODS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            load = METHODS[name][0]
            gc.collect()  # the previous method's garbage is not this one's cost
            start = time.perf_counter()
            load(folder)
            times[name].append(time.perf_counter() - start)
    return times


def table(times: dict[str, list[float]]) -> str:
    """Markdown table: median, min and median ratio to SimpleITK."""
    ref = statistics.median(times[REFERENCE])
    rows = [
        "| method | median s | min s | ratio vs SimpleITK (median) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(f"| {name} | {median:.3f} | {min(values):.3f} | {median / ref:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, check the data, warm up and verify, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"the series folder (default: $CTPIPE_SHARED_DATA/{SERIES_NAME} "
        f"or <repo>/../shared/data/{SERIES_NAME})",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per method")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    folder = args.data if args.data is not None else default_series_folder()
    if not folder.is_dir():
        sys.exit(
            f"series folder not found: {folder}. Pass --data FOLDER or set "
            f"CTPIPE_SHARED_DATA to the folder that holds {SERIES_NAME}/."
        )
    # Expected: ctpipe names the LICENSE and Citations files it skips in that folder.
    warnings.filterwarnings("ignore", message=r"skipped \d+ non-DICOM file")

    print(f"series: {folder} ({sum(1 for p in folder.iterdir() if p.is_file())} files)")
    for line in machine_info():
        print(line)
    warm = check_same_hu(folder)
    print(
        "warm-up (first read incl. imports, not in the table): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items())
    )
    print(f"all methods give the same float32 HU array {EXPECTED_SHAPE} (i, j, k)")
    print(f"{args.repeats} interleaved timed runs per method:\n")
    print(table(time_methods(folder, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
