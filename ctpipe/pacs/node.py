"""The DICOM node: receive series, run a processor on each, send the results on.

:class:`PacsNode` ties the parts together:

* the storage SCP (:mod:`ctpipe.pacs.scp`) writes each instance into its job's input folder
  before acknowledging it;
* a processing thread moves complete series to ``queued``
  (:mod:`ctpipe.pacs.completion`), runs the processor on one job at a time into the job's
  output folder, marks the results of an incomplete or revised series
  (:mod:`ctpipe.pacs.reception`) and records the result files; a job that a late instance
  reopened while it ran drops its results and waits for the series to complete again;
* a sending thread sends each job's results (:mod:`ctpipe.pacs.send`); a failed attempt
  waits with exponential backoff (``destination.retry``) and the job stays queued, so
  results are never dropped.

All state is in the on-disk queue (:mod:`ctpipe.pacs.queue`): a node killed at any point
and started again loses nothing it acknowledged and processes no series twice. A lock file
(``node.lock`` in the storage folder) stops a second node from using the same folder.

Example:
    >>> from ctpipe.pacs.config import ServeConfig
    >>> config = ServeConfig.from_dict({"storage": "/var/lib/ctpipe", "processor": "m:f"})
    >>> node = PacsNode(config, processor=lambda series, output: [])
    >>> node.sender is None, node.retry.delay(2)
    (True, 10.0)
    >>> node.start()  # doctest: +SKIP
    ('127.0.0.1', 11112)
    >>> node.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctpipe.errors import CTPipeError, InputError
from ctpipe.pacs.config import RetryConfig, ServeConfig
from ctpipe.pacs.processor import Processor, takes_reception
from ctpipe.pacs.queue import RECEIVING, SKIPPED, Job, JobQueue
from ctpipe.pacs.reception import Reception, mark_results
from ctpipe.pacs.scp import StorageSCP
from ctpipe.pacs.send import Sender, SendError, build_sender

__all__ = ["LOCK_NAME", "PacsNode", "StorageLockedError"]

LOG = logging.getLogger("ctpipe.pacs")
#: Lock file in the storage folder, held while a node runs.
LOCK_NAME = "node.lock"


class StorageLockedError(InputError):
    """Another node process is using the storage folder."""


class PacsNode:
    """A running DICOM node (see the module docstring).

    Args:
        config: The serve configuration.
        processor: What runs on each complete series.
        sender: Where results go; built from ``config.destination`` when None (no sending
            when the config has no destination).
        clock: Returns the current time in seconds.
    """

    def __init__(
        self,
        config: ServeConfig,
        processor: Processor,
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.processor = processor
        self._takes_reception = takes_reception(processor)
        if sender is None and config.destination is not None:
            sender = build_sender(config.destination, config.node.ae_title)
        self.sender = sender
        self.retry = config.destination.retry if config.destination else RetryConfig()
        self.queue: JobQueue | None = None
        self.scp: StorageSCP | None = None
        self.address: tuple[str, int] | None = None
        self._clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_handle: Any = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Lock the storage, repair the queue, listen and start the worker threads.

        Returns:
            The (host, port) the node listens on.

        Raises:
            StorageLockedError: When another node uses the storage folder.
            CTPipeError: When the port cannot be opened.
        """
        root = self.config.storage_path
        root.mkdir(parents=True, exist_ok=True)
        self._lock_handle = _lock(root / LOCK_NAME)
        self.queue = JobQueue(root, clock=self._clock)
        repaired = self.queue.recover(self.config.max_process_attempts)
        if any(repaired.values()):
            LOG.warning("recovered after an abrupt stop: %s", repaired)
        self.scp = StorageSCP(self.queue, self.config.node)
        try:
            self.address = self.scp.start()
        except OSError as err:
            self._release()
            node = self.config.node
            raise CTPipeError(f"cannot listen on {node.host}:{node.port}: {err}") from None
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(self.process_next,), name="ctpipe-process"),
            threading.Thread(target=self._loop, args=(self.send_next,), name="ctpipe-send"),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        node = self.config.node
        LOG.info(
            "listening as %s on %s:%d; storage %s; results to %s",
            node.ae_title,
            *self.address,
            root,
            self.sender.description if self.sender else "the storage folder only",
        )
        return self.address

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop listening, let the job in progress finish, stop the threads.

        Args:
            timeout_s: How long to wait for the worker threads (forever when None). A job
                still running is started again at the next start.
        """
        self._stop.set()
        if self.scp is not None:
            self.scp.stop()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []
        self._release()

    def serve_forever(self) -> None:
        """Start, then run until SIGTERM or Ctrl-C; stop cleanly."""
        self.start()
        previous = signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            LOG.info("interrupted; stopping after the job in progress")
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def _release(self) -> None:
        if self.queue is not None:
            self.queue.close()
            self.queue = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def _loop(self, step: Callable[[], bool]) -> None:
        while not self._stop.is_set():
            try:
                busy = step()
            except Exception:  # a worker thread must survive and log
                LOG.exception("unexpected error in %s", threading.current_thread().name)
                busy = False
            if not busy:
                self._stop.wait(self.config.poll_interval_s)

    # --- work --------------------------------------------------------------------------------

    def process_next(self) -> bool:
        """Queue complete series, then process the oldest queued job; False when idle."""
        queue = self._queue()
        for job_id in queue.promote_complete(self.config.completion):
            _log_complete(queue.get(job_id))
        job = queue.claim_next()
        if job is None:
            return False
        inputs, outputs = queue.input_folder(job.id), queue.output_folder(job.id)
        shutil.rmtree(outputs, ignore_errors=True)  # a rerun starts from a clean folder
        outputs.mkdir(parents=True)
        started = time.perf_counter()
        try:
            reception = self._reception(queue, job)
            if reception is None:
                self._fail(queue, job, "no instance was stored for this series")
                return True
            results = [Path(p) for p in self._run(inputs, outputs, reception)]
            _check_results(results, outputs)
            mark_results(results, reception)
        except CTPipeError as err:
            self._fail(queue, job, str(err))
            return True
        except Exception as err:  # a bad series must not stop the node
            LOG.exception("job %d failed", job.id)
            self._fail(queue, job, f"{type(err).__name__}: {err}")
            return True
        state = queue.finish_processing(job.id, results, send=self.sender is not None)
        if state == RECEIVING:
            LOG.info(
                "job %d: late instances arrived while it was processed; results dropped, "
                "the series is processed again once complete",
                job.id,
            )
            return True
        LOG.info(
            "job %d: %d result file(s) in %.1f s, %s",
            job.id,
            len(results),
            time.perf_counter() - started,
            state,
        )
        return True

    def _reception(self, queue: JobQueue, job: Job) -> Reception | None:
        """Gather the instances of the series' earlier jobs; describe the series."""
        inputs = queue.input_folder(job.id)
        if job.supersedes is not None:
            added = queue.gather_inputs(job.id)
            LOG.info(
                "job %d: %d instance(s) of earlier job(s) %s of the series included",
                job.id,
                added,
                ", ".join(str(n) for n in queue.lineage(job.id)),
            )
        count = sum(1 for _ in inputs.glob("*.dcm")) if inputs.is_dir() else 0
        if count == 0:
            return None
        reception = Reception.from_job(job, count)
        LOG.info("job %d: processing series %s (%d instances)", job.id, job.series_uid, count)
        for warning in reception.warnings():
            LOG.warning(
                "job %d: %s; results marked %s", job.id, warning, " ".join(reception.markers)
            )
        return reception

    def _run(self, inputs: Path, outputs: Path, reception: Reception) -> list[Path]:
        if self._takes_reception:
            return list(self.processor(inputs, outputs, reception=reception))  # type: ignore[call-arg]
        return list(self.processor(inputs, outputs))

    def _fail(self, queue: JobQueue, job: Job, error: str) -> None:
        if queue.fail(job.id, error) == RECEIVING:
            LOG.info(
                "job %d: late instances arrived while it was processed; the failure (%s) is "
                "dropped, the series is processed again once complete",
                job.id,
                error,
            )
        else:
            LOG.error("job %d failed: %s", job.id, error)

    def send_next(self) -> bool:
        """Send the results of the job due soonest; False when nothing is due."""
        queue = self._queue()
        job = queue.next_to_send() if self.sender is not None else None
        if job is None or self.sender is None:
            return False
        pending = [o.path for o in queue.outputs(job.id) if not o.sent]
        try:
            self.sender.send(pending, lambda path: queue.mark_sent(job.id, path))
        except (SendError, OSError) as err:
            delay = self.retry.delay(job.send_attempts + 1)
            attempts = queue.send_failed(job.id, str(err), delay)
            LOG.warning(
                "job %d: sending failed (attempt %d): %s; kept queued, next attempt in %.1f s",
                job.id,
                attempts,
                err,
                delay,
            )
            return False
        queue.finish_sending(job.id)
        LOG.info(
            "job %d: %d file(s) sent to %s, done", job.id, len(pending), self.sender.description
        )
        return True

    def _queue(self) -> JobQueue:
        if self.queue is None:
            raise RuntimeError("the node is not started")
        return self.queue


def _log_complete(job: Job) -> None:
    if job.state == SKIPPED:
        LOG.warning("job %d: series %s complete, skipped: %s", job.id, job.series_uid, job.error)
    elif job.incomplete:
        LOG.warning(
            "job %d: series %s queued, incomplete: %s", job.id, job.series_uid, job.incomplete
        )
    else:
        LOG.info("job %d: series complete, queued", job.id)


def _check_results(results: list[Path], output_folder: Path) -> None:
    root = output_folder.resolve()
    for path in results:
        if not path.is_file():
            raise CTPipeError(f"the processor returned {path}, which is not a file")
        if not path.resolve().is_relative_to(root):
            raise CTPipeError(
                f"the processor returned {path}, outside its output folder {output_folder}"
            )


def _lock(path: Path) -> Any:
    """Hold an exclusive lock on ``path`` (released when the process ends, even by kill -9)."""
    import fcntl

    handle = open(path, "a+")  # noqa: SIM115 - held open for the node's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StorageLockedError(
            path.parent,
            f"another ctpipe serve is using this storage folder ({path.name} is locked)",
        ) from None
    return handle
