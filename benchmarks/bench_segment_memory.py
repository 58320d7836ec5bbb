"""Peak memory and time of ``segment_volume`` on a 512 x 512 x 300 CT volume on the CPU.

The volume is the synthetic phantom (:func:`ctpipe.phantom.make_phantom`) on a
512 x 512 x 300 grid of 0.7 x 0.7 x 1 mm (a typical abdominal CT), float32 HU: 300 MiB.
It is segmented by the shipped segmenter (or ``--weights``) with its recorded settings,
``sw_device`` and ``device`` both ``cpu``. The process's resident memory (RSS, from
``/proc/self/statm``) is sampled every 10 ms during the call; the script prints the
peak above the RSS before the call, as a multiple of the input's size, and the time.

Reference measured in the same run: the first 75 slices of the same volume (a quarter),
so the ratios show how time and memory scale with the number of slices.

The GPU split (``sw_device="cuda"``, ``device="cpu"``) keeps only the windows on the GPU:
``sw_batch_size`` windows of ``roi_size`` and the network's activations; the stitched
logits and the label map stay in host memory, so their size is what this script measures.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_segment_memory.py [--weights CKPT] [--slices 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRSS:
    """Sample the RSS every ``interval`` seconds in a thread; ``peak`` is the largest seen."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def measure(image, model, config, settings, sw_batch_size: int) -> tuple[float, int, int]:
    from ctpipe.segment import segment_volume

    before = rss_bytes()
    start = time.perf_counter()
    with PeakRSS() as peak:
        labels = segment_volume(
            image,
            model,
            config=config,
            sw_batch_size=sw_batch_size,
            sw_device="cpu",
            device="cpu",
            **settings,
        )
    seconds = time.perf_counter() - start
    assert tuple(labels.shape) == tuple(image.shape)
    return seconds, peak.peak - before, before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="segmenter checkpoint (default: the shipped model)")
    parser.add_argument("--slices", type=int, default=300, help="slices of the volume")
    parser.add_argument("--sw-batch-size", type=int, default=8)
    args = parser.parse_args()
    import torch
    from monai.data import MetaTensor

    from ctpipe.phantom import make_phantom

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    if args.weights:
        from ctpipe.checkpoints.segmenter import load_segmenter

        model, config = load_segmenter(args.weights)
    else:
        from ctpipe.weights import load_default_segmenter

        model, config = load_default_segmenter()
    settings = model.checkpoint_record["inference"]
    phantom = make_phantom(shape=(512, 512, args.slices), spacing=(0.7, 0.7, 1.0), seed=0)
    affine = torch.from_numpy(phantom.to_ras_affine())
    full = MetaTensor(torch.from_numpy(phantom.hu), affine=affine)
    quarter_slices = args.slices // 4
    quarter = MetaTensor(torch.from_numpy(phantom.hu[:, :, :quarter_slices].copy()), affine=affine)
    del phantom
    results = {}
    for name, image in (("quarter", quarter), ("full", full)):
        seconds, peak, before = measure(image, model, config, settings, args.sw_batch_size)
        size = image.numel() * 4
        results[name] = (seconds, peak, size)
        print(
            f"{tuple(image.shape)}: {seconds:.1f} s ({image.shape[2] / seconds:.1f} slices/s), "
            f"input {size / 2**20:.0f} MiB, RSS before {before / 2**20:.0f} MiB, peak "
            f"+{peak / 2**20:.0f} MiB ({peak / size:.2f} x input)"
        )
    (t_q, m_q, s_q), (t_f, m_f, s_f) = results["quarter"], results["full"]
    print(
        f"full / quarter: time x{t_f / t_q:.2f}, peak memory x{m_f / m_q:.2f} "
        f"(input x{s_f / s_q:.2f})"
    )
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}; date {time.strftime('%Y-%m-%d')}"
    )
    print(f"settings: {settings}, sw_batch_size {args.sw_batch_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
