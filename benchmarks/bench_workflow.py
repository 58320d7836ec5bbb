"""End-to-end workflow time per step, and batch throughput with and without I/O overlap.

Measures, in one run:

1. **Per step** on one study (default: the 134-slice pancreas series, default workflow):
   seconds to read, denoise, segment and export (derived DICOM series, DICOM-SEG, NIfTI,
   previews, report), from the study's run record.
2. **Throughput**: the same series replicated ``--replicas`` times (new Study/Series/SOP
   UIDs, so each copy is its own study), run as a batch twice with the models loaded
   once: one series after another (reference), then with read-ahead and write-behind
   threads (``run_batch(..., overlap=True)``). Prints studies per minute and the ratio.

``--slices K`` keeps the K central slices of the series (shorter runs on CPU; the figures
say so). Run from the repository root with the virtual environment active:

    python benchmarks/bench_workflow.py [--replicas 10] [--slices 40] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


def replicate(source: Path, target: Path, copies: int, slices: int | None) -> list[Path]:
    """Copy the series ``copies`` times with new UIDs (keeping ``slices`` central slices)."""
    import pydicom
    from pydicom.uid import generate_uid

    from ctpipe.io.discovery import scan_dicom

    series = scan_dicom(source, progress=False).series[0]
    files = [s.path for s in series.slices]
    if slices:
        start = max(0, (len(files) - slices) // 2)
        files = files[start : start + slices]
    folders = []
    for copy in range(copies):
        folder = target / f"study{copy:02d}"
        folder.mkdir(parents=True)
        study, uid, frame = generate_uid(), generate_uid(), generate_uid()
        for index, path in enumerate(files):
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, uid, frame
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"BENCH{copy:02d}"
            ds.save_as(folder / f"IM{index:04d}.dcm")
        folders.append(folder)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=DATA / "pancreas_ct_series")
    parser.add_argument(
        "--workflow", type=Path, default=REPO / "workflows" / "denoise_segment.yaml"
    )
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--slices", type=int, default=None, help="central slices per copy")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()
    if not args.series.exists():
        print(f"series not found: {args.series} (set CTPIPE_SHARED_DATA)", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    import torch

    from ctpipe.workflow import load_workflow, run_batch
    from ctpipe.workflow.runner import StudyRun
    from ctpipe.workflow.steps import Models

    workflow = load_workflow(args.workflow)
    workflow = replace(
        workflow,
        denoise=replace(workflow.denoise, device=args.device),
        segment=replace(workflow.segment, sw_device=args.device),
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}, GPU {gpu}, torch {torch.__version__}"
    )
    print(f"workflow: {workflow.name} ({' -> '.join(workflow.steps)}), device {args.device}")
    models = Models.load(workflow, source=args.workflow)
    work = Path(tempfile.mkdtemp(prefix="ctpipe-bench-"))
    try:
        folders = replicate(args.series, work / "tree", args.replicas, args.slices)
        run = StudyRun.start(workflow, folders[0], work / "single", workflow_source=args.workflow)
        result = run.read().compute(models).finish()
        record = result.record
        print(f"\n1. one study ({record['input']['shape']} voxels), seconds per step:")
        rows = {"read": record["timings"]["read"]}
        rows.update({step: rec["seconds"] for step, rec in record["steps"].items()})
        rows["export"] = record["timings"]["export"]
        rows["total"] = record["timings"]["total"]
        for name, seconds in rows.items():
            print(f"   {name:<8} {seconds:8.2f}")
        if args.replicas < 2:
            return 0
        print(f"\n2. batch of {args.replicas} copies, models loaded once:")
        speeds = {}
        for label, overlap in (("sequential", False), ("overlapped", True)):
            out = work / label
            started = time.perf_counter()
            batch = run_batch(
                workflow,
                work / "tree",
                out,
                models=models,
                progress=False,
                resume=False,
                overlap=overlap,
                workflow_source=args.workflow,
            )
            seconds = time.perf_counter() - started
            assert batch.counts == {"done": args.replicas}, batch.counts
            speeds[label] = args.replicas * 60.0 / seconds
            print(f"   {label:<11} {seconds:8.1f} s  {speeds[label]:6.2f} studies/min")
        print(f"   overlapped / sequential: {speeds['overlapped'] / speeds['sequential']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
