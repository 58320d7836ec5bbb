"""Kill -9 a real ``ctpipe serve`` process mid-series and mid-job: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
import yaml

from ctpipe.pacs.queue import JobQueue
from tests.conftest import REPO
from tests.pacs.conftest import (
    associate,
    env_with_repo,
    free_port,
    node_config,
    send_files,
    wait_for,
    write_phantom_series,
)

pytestmark = pytest.mark.slow


class NodeProcess:
    """``python -m ctpipe serve CONFIG`` in a subprocess."""

    def __init__(self, config: dict, folder: Path, log: Path) -> None:
        self.config_path = folder / "node.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = config["node"]["port"]
        self.storage = Path(config["storage"])
        self.log = log
        self.stderr = folder / "node.stderr"
        self.process: subprocess.Popen | None = None

    def start(self, delay_s: float = 0.0) -> NodeProcess:
        env = env_with_repo()
        env["CTPIPE_TEST_PROCESS_LOG"] = str(self.log)
        env["CTPIPE_TEST_PROCESS_DELAY"] = str(delay_s)
        with open(self.stderr, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ctpipe", "serve", str(self.config_path)],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
        wait_for(self._answers, timeout=60, interval=0.1, what="the node to listen")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"node exited: {self.stderr.read_text()[-3000:]}")
        assoc = associate(self.port)
        if not assoc.is_established:
            return False
        assoc.release()
        return True

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def jobs(self):
        queue = JobQueue(self.storage)
        try:
            return queue.jobs()
        finally:
            queue.close()

    def log_lines(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]


@pytest.fixture
def node_process(tmp_path, destination):
    retry = {"initial_delay_s": 0.2, "max_delay_s": 1.0}
    dest = {"kind": "dimse", "ae_title": destination.ae_title, "port": destination.port}
    config = node_config(tmp_path / "storage", free_port(), {**dest, "retry": retry})
    config["completion"]["interrupted_timeout_s"] = 60
    node = NodeProcess(config, tmp_path, tmp_path / "process.log")
    yield node
    node.terminate()


def _sop(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_kill_mid_series_loses_nothing_acknowledged(tmp_path, node_process, destination):
    files = write_phantom_series(tmp_path / "series")
    node_process.start()
    assoc = associate(node_process.port, files)
    assert [assoc.send_c_store(f).Status for f in files[:3]] == [0, 0, 0]
    node_process.kill()  # mid-association: the sender sees the connection drop
    wait_for(lambda: not assoc.is_established, what="the sender to see the abort")
    stored = sorted(p.stem for p in node_process.storage.glob("jobs/*/input/*.dcm"))
    assert stored == sorted(_sop(f) for f in files[:3])

    node_process.start()
    assert send_files(node_process.port, files[3:]) == [0, 0, 0]  # the sender resumes
    wait_for(lambda: len(destination.received) >= 7, what="results at the destination")
    (job,) = wait_for(lambda: [j for j in node_process.jobs() if j.state == "done"] or None)
    assert (job.process_attempts, job.send_attempts) == (1, 0)
    runs = node_process.log_lines()
    assert [(event, count) for event, _, count in runs] == [("start", "6"), ("end", "6")]
    assert len(destination.received) == len(set(destination.sop_uids())) == 7


def test_kill_mid_job_processes_once_and_sends_once(tmp_path, node_process, destination):
    files = write_phantom_series(tmp_path / "series")
    node_process.start(delay_s=30)
    assert send_files(node_process.port, files) == [0] * 6
    wait_for(node_process.log_lines, what="processing to start")
    node_process.kill()  # mid-job
    (job,) = node_process.jobs()
    assert job.state == "processing"

    node_process.start()
    wait_for(lambda: len(destination.received) >= 7, what="results at the destination")
    (job,) = wait_for(lambda: [j for j in node_process.jobs() if j.state == "done"] or None)
    assert job.process_attempts == 2
    runs = node_process.log_lines()
    # started twice (the first run was killed), finished once, on all six instances
    assert [(event, count) for event, _, count in runs] == [
        ("start", "6"),
        ("start", "6"),
        ("end", "6"),
    ]
    assert len(destination.received) == len(set(destination.sop_uids())) == 7
    status = subprocess.run(
        [sys.executable, "-m", "ctpipe", "serve", str(node_process.config_path), "--status"],
        cwd=REPO,
        env=env_with_repo(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "done: 1" in status and job.series_uid in status


def test_sigterm_stops_the_node_cleanly(node_process):
    node_process.start()
    node_process.process.send_signal(signal.SIGTERM)
    assert node_process.process.wait(timeout=30) == 0
    log = node_process.stderr.read_text()
    assert "listening as CTPIPE on 127.0.0.1" in log and "Traceback" not in log
