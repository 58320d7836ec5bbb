"""Fixtures of the PACS tests: a real Orthanc, a recording C-STORE destination, senders.

The ``orthanc`` fixture starts Debian's ``Orthanc`` (with the ``orthanc-dicomweb`` plugin)
on 127.0.0.1 with a temporary configuration and storage, once per session, and stops it
afterwards; tests that need it skip with the reason when the binary is absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import axial_affine, shared_path

ORTHANC_BINARY = shutil.which("Orthanc") or (
    "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
)
DICOMWEB_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
ORTHANC_AET = "ORTHANC"
NODE_AET = "CTPIPE"
PANCREAS_SLICES = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- Orthanc ---------------------------------------------------------------------------------


@dataclass
class Orthanc:
    """A running Orthanc and a few REST helpers."""

    http_port: int
    dicom_port: int
    node_port: int
    process: subprocess.Popen
    log: Path
    aet: str = ORTHANC_AET

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def get(self, path: str) -> Any:
        import requests

        response = requests.get(self.url + path, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, data: Any) -> Any:
        import requests

        body = data if isinstance(data, bytes) else json.dumps(data)
        response = requests.post(self.url + path, data=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def clear(self) -> None:
        import requests

        for patient in self.get("/patients"):
            requests.delete(f"{self.url}/patients/{patient}", timeout=30).raise_for_status()

    def upload(self, files: Sequence[Path]) -> list[dict]:
        return [self.post("/instances", Path(f).read_bytes()) for f in files]

    def series_by_uid(self, series_uid: str) -> dict | None:
        found = self.post(
            "/tools/find", {"Level": "Series", "Query": {"SeriesInstanceUID": series_uid}}
        )
        return self.get(f"/series/{found[0]}") if found else None

    def instance_tags(self, instance_id: str) -> dict:
        return self.get(f"/instances/{instance_id}/simplified-tags")

    def study_series(self, study_uid: str) -> list[dict]:
        found = self.post(
            "/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
        )
        if not found:
            return []
        return self.get(f"/studies/{found[0]}/series")

    def sop_uids(self) -> set[str]:
        """SOP Instance UIDs of every instance Orthanc holds."""
        uids = set()
        for instance in self.get("/instances?expand"):
            uids.add(instance["MainDicomTags"]["SOPInstanceUID"])
        return uids


def _dicomweb_plugin() -> Path | None:
    for folder in DICOMWEB_PLUGIN_DIRS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return candidate
    return None


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator[Orthanc]:
    if ORTHANC_BINARY is None:
        pytest.skip("Orthanc is not installed (Debian packages orthanc and orthanc-dicomweb)")
    plugin = _dicomweb_plugin()
    if plugin is None:
        pytest.skip(
            "the Orthanc DICOMweb plugin is not installed (Debian package orthanc-dicomweb)"
        )
    root = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port, node_port = free_port(), free_port(), free_port()
    config = {
        "Name": "ctpipe-tests",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "storage"),
        "Plugins": [str(plugin)],
        "HttpPort": http_port,
        "HttpBindAddress": "127.0.0.1",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "DicomModalities": {"ctpipe": [NODE_AET, "127.0.0.1", node_port]},
        "DicomScuTimeout": 10,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": "127.0.0.1"},
        "SaveJobs": False,
        "StableAge": 1,
    }
    config_path = root / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = root / "orthanc.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [ORTHANC_BINARY, str(config_path)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    server = Orthanc(http_port, dicom_port, node_port, process, log)
    try:
        wait_for(lambda: _answers(server), timeout=30, what=f"Orthanc to start (log: {log})")
        plugins = server.get("/plugins")
        assert "dicom-web" in plugins, f"DICOMweb plugin not loaded: {plugins}"
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with_parent() -> None:
    """Make the child get SIGTERM when the test process dies (Linux), so no Orthanc is left."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _answers(server: Orthanc) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"Orthanc exited: {server.log.read_text()[-2000:]}")
    try:
        server.get("/system")
    except Exception:  # not up yet
        return False
    return True


@pytest.fixture
def clean_orthanc(orthanc: Orthanc) -> Orthanc:
    orthanc.clear()
    return orthanc


# --- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pancreas_slices() -> list[Path]:
    """The first few contiguous slices (along the normal) of the real pancreas CT series."""
    from ctpipe.io.discovery import scan_dicom

    folder = shared_path("pancreas_ct_series")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the folder also holds LICENSE and Citations
        series = scan_dicom(folder).series[0]
    return [s.path for s in series.slices[:PANCREAS_SLICES]]


def write_phantom_series(
    folder: Path, *, seed: int = 0, slices: int = 6, grid: tuple[int, int] = (32, 24), **kwargs
) -> list[Path]:
    """A small CT series (random HU on a 32 x 24 grid) written with write_ct_series."""
    from ctpipe.export.dicom_series import write_ct_series

    rng = np.random.default_rng(seed)
    hu = rng.integers(-1000, 1500, size=(*grid, slices)).astype(np.float32)
    return write_ct_series(hu, axial_affine(), folder, patient_id=f"P{seed}", **kwargs)


@pytest.fixture
def phantom_series(tmp_path: Path) -> list[Path]:
    return write_phantom_series(tmp_path / "phantom")


# --- DICOM peers -------------------------------------------------------------------------------


@dataclass
class RecordingSCP:
    """A C-STORE destination that keeps every data set it is sent."""

    port: int
    ae_title: str = "DEST"
    status: int = 0x0000
    allowed_calling_aets: tuple[str, ...] = ()
    received: list[Any] = field(default_factory=list)
    server: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> RecordingSCP:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.require_calling_aet = list(self.allowed_calling_aets)
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        return self

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        if self.status == 0x0000:
            with self.lock:
                self.received.append(ds)
        return self.status

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def sop_uids(self) -> list[str]:
        with self.lock:
            return [str(ds.SOPInstanceUID) for ds in self.received]


@pytest.fixture
def destination() -> Iterator[RecordingSCP]:
    scp = RecordingSCP(free_port()).start()
    yield scp
    scp.stop()


def associate(
    port: int,
    files: Sequence[Path] = (),
    calling_ae: str = "SENDER",
    called_ae: str = NODE_AET,
    **kwargs,
):
    """An association to a node on 127.0.0.1 with contexts for ``files`` (and CT)."""
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, Verification

    ae = AE(ae_title=calling_ae)
    # generous: these tests check behaviour, not speed, and a loaded CI machine can take
    # many seconds to fsync an instance before it acknowledges it
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 90
    contexts = {(CTImageStorage, None), (Verification, None)}
    for path in files:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        contexts.add((meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID))
    for sop_class, syntax in sorted(contexts, key=str):
        if syntax is None:
            ae.add_requested_context(sop_class)
        else:
            ae.add_requested_context(sop_class, syntax)
    return ae.associate("127.0.0.1", port, ae_title=called_ae, **kwargs)


def send_files(port: int, files: Sequence[Path], calling_ae: str = "SENDER") -> list[int]:
    """Send ``files`` in one association; return the C-STORE statuses."""
    assoc = associate(port, files, calling_ae)
    assert assoc.is_established, f"association to 127.0.0.1:{port} refused"
    try:
        return [int(assoc.send_c_store(Path(f)).Status) for f in files]
    finally:
        assoc.release()


def dimse_destination(scp: RecordingSCP) -> dict:
    """The ``destination`` section for a recording SCP, with fast retries."""
    retry = {"initial_delay_s": 0.2, "factor": 2.0, "max_delay_s": 0.8}
    return {"kind": "dimse", "ae_title": scp.ae_title, "port": scp.port, "retry": retry}


class CountingProcessor:
    """The test processor, recording the instance count of every call; the first ``hold``
    calls wait at their start until ``release(n)`` (``started[n]`` is set when call n began).
    """

    def __init__(self, hold: int = 0) -> None:
        from tests.pacs.processors import threshold_seg

        self.inner = threshold_seg
        self.calls: list[tuple[Path, int]] = []
        self.lock = threading.Lock()
        self.started = [threading.Event() for _ in range(hold)]
        self.gates = [threading.Event() for _ in range(hold)]

    def __call__(self, series: Path, output: Path) -> list[Path]:
        with self.lock:
            n = len(self.calls)
            self.calls.append((series, len(list(series.glob("*.dcm")))))
        if n < len(self.gates):
            self.started[n].set()
            assert self.gates[n].wait(30), f"call {n} was never released"
        return self.inner(series, output)

    def release(self, n: int) -> None:
        self.gates[n].set()

    def counts(self) -> list[int]:
        with self.lock:
            return [count for _, count in self.calls]


def node_config(storage: Path, port: int, destination: dict | None, **overrides) -> dict:
    """A serve config for tests: fast completion and retries, the test processor."""
    config = {
        "storage": str(storage),
        "processor": "tests.pacs.processors:threshold_seg",
        "node": {"ae_title": NODE_AET, "host": "127.0.0.1", "port": port},
        "completion": {"quiet_period_s": 0.3, "interrupted_timeout_s": 3.0},
        "poll_interval_s": 0.05,
    }
    if destination is not None:
        config["destination"] = destination
    config.update(overrides)
    return config


def env_with_repo() -> dict[str, str]:
    """The environment for a ``python -m ctpipe`` subprocess that imports tests.pacs."""
    from tests.conftest import REPO

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@contextlib.contextmanager
def running_node(config: dict, processor=None) -> Iterator[Any]:
    """A started in-process node (the test processor unless another is given)."""
    from ctpipe.pacs.config import ServeConfig
    from ctpipe.pacs.node import PacsNode
    from tests.pacs.processors import threshold_seg

    node = PacsNode(ServeConfig.from_dict(config), processor or threshold_seg)
    node.start()
    try:
        yield node
    finally:
        node.stop(timeout_s=30)


def wait_finished(node, count: int, timeout: float = 30.0) -> list[Any]:
    """Wait until ``count`` jobs are done, failed or skipped; return every job."""

    def finished():
        jobs = node.queue.jobs()
        ended = [j for j in jobs if j.state in ("done", "failed", "skipped")]
        return jobs if len(ended) >= count else None

    return wait_for(finished, timeout=timeout, what=f"{count} finished job(s)")
