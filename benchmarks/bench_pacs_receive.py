"""Benchmark: receive the 134-slice pancreas CT series by C-STORE, ctpipe vs plain pynetdicom.

Each receiver gets the whole series in one association from a pynetdicom SCU in the same
process (files sent as they are on disk), over 127.0.0.1:

* ``pynetdicom, discard``: a storage SCP whose handler acknowledges without decoding or
  writing (the network and DIMSE cost alone).
* ``pynetdicom, write``: the handler of pynetdicom's documentation, writing
  ``event.encoded_dataset()`` to a file with ``open().write()`` (no checks, no fsync).
  This is the reference of the ratios.
* ``ctpipe node``: :class:`ctpipe.pacs.scp.StorageSCP` on a job queue: decode and check
  every data set, write it durably (temporary name, fsync, rename, folder fsync) and
  record it in the SQLite queue before acknowledging. The quiet period is long, so
  nothing is processed during the run.

One warm-up each, then interleaved repeats (the order rotates); median, min and the ratio
to the reference. Run from the repository root::

    python benchmarks/bench_pacs_receive.py [--repeats 3] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERIES_NAME = "pancreas_ct_series"
REFERENCE = "pynetdicom, write"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def default_series_folder() -> Path:
    """The pancreas series under $CTPIPE_SHARED_DATA or <repo>/../shared/data."""
    shared = Path(os.environ.get("CTPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))
    return shared / SERIES_NAME


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def series_files(folder: Path) -> list[Path]:
    from ctpipe.io.discovery import scan_dicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [s.path for s in scan_dicom(folder).series[0].slices]


def send(port: int, files: list[Path]) -> float:
    """Send ``files`` in one association; return the seconds from associate to release."""
    from pydicom import dcmread
    from pynetdicom import AE

    meta = dcmread(files[0], stop_before_pixels=True).file_meta
    ae = AE(ae_title="BENCH")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 300  # a busy machine is slow
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    start = time.perf_counter()
    assoc = ae.associate("127.0.0.1", port, ae_title="CTPIPE")
    assert assoc.is_established, "association refused"
    for path in files:
        status = assoc.send_c_store(path)
        assert int(status.Status) == 0, f"{path}: status 0x{int(status.Status):04X}"
    assoc.release()
    return time.perf_counter() - start


class PlainSCP:
    """pynetdicom storage SCP: discard, or write like pynetdicom's documentation."""

    def __init__(self, folder: Path | None) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.folder = folder
        self.port = free_port()
        ae = AE(ae_title="CTPIPE")
        ae.supported_contexts = AllStoragePresentationContexts
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self.store)]
        )

    def store(self, event) -> int:
        if self.folder is not None:
            path = self.folder / f"{event.request.AffectedSOPInstanceUID}.dcm"
            with path.open("wb") as handle:
                handle.write(event.encoded_dataset())
        return 0x0000

    def stop(self) -> None:
        self.server.shutdown()


class CtpipeSCP:
    """ctpipe's storage SCP on a job queue (no processing)."""

    def __init__(self, root: Path) -> None:
        from ctpipe.pacs.config import NodeConfig
        from ctpipe.pacs.queue import JobQueue
        from ctpipe.pacs.scp import StorageSCP

        self.port = free_port()
        self.queue = JobQueue(root)
        self.scp = StorageSCP(self.queue, NodeConfig(ae_title="CTPIPE", port=self.port))
        self.scp.start()

    def stop(self) -> None:
        self.scp.stop()
        self.queue.close()


def run_once(name: str, files: list[Path], work: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=work))
    receiver: PlainSCP | CtpipeSCP
    if name == "ctpipe node":
        receiver = CtpipeSCP(folder)
    else:
        receiver = PlainSCP(folder if name == REFERENCE else None)
    try:
        return send(receiver.port, files)
    finally:
        receiver.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=default_series_folder())
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"series folder not found: {args.data} (use --data)", file=sys.stderr)
        return 2
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    files = series_files(args.data)
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    names = ["pynetdicom, discard", REFERENCE, "ctpipe node"]
    work = Path(tempfile.mkdtemp(prefix="bench_pacs_"))
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:
            run_once(name, files, work)  # warm-up
        for round_ in range(args.repeats):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                times[name].append(run_once(name, files, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    print(f"series: {args.data} ({len(files)} files, {megabytes:.1f} MB); {args.repeats} repeats")
    reference = statistics.median(times[REFERENCE])
    print(f"{'receiver':<22} {'median s':>9} {'min s':>7} {'inst/s':>7} {'MB/s':>6} {'ratio':>6}")
    for name in names:
        median = statistics.median(times[name])
        print(
            f"{name:<22} {median:>9.2f} {min(times[name]):>7.2f} {len(files) / median:>7.1f} "
            f"{megabytes / median:>6.1f} {median / reference:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
