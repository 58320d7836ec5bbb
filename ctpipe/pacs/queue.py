"""The node's job queue, on disk in SQLite, so that a restart loses and repeats nothing.

A job is one series: the instances of one SeriesInstanceUID received until the series was
complete. Its state moves forward, except that a late instance sends a job that has not
sent results back to ``receiving``::

    receiving -> queued -> processing -> sending -> done
        |                      +-> failed
        +-> skipped
    (a late instance: queued and processing go back to receiving)

* ``receiving``: instances are arriving. Its received files are in ``jobs/<id>/input/``.
  A series has at most one job in ``receiving``, ``queued`` or ``processing``; an instance
  of the series joins that job (a ``queued`` job goes back to ``receiving``; a
  ``processing`` job is marked ``reopened`` and goes back to ``receiving`` when its run
  ends, its results dropped). Only when the series' last job has left these states does an
  instance start a new job, which ``supersedes`` the last one: it is processed on the
  instances of every earlier job of the series plus its own (:meth:`JobQueue.lineage`), and
  it is ``revised`` when the earlier job had results to send.
* ``queued``: complete, waiting for the processor. A job completed by the interrupted
  timeout records why it may be ``incomplete``.
* ``skipped``: complete but not processed, by the node's policy (``completion.incomplete:
  skip`` or ``completion.late_instances: store``); ``error`` says why.
* ``processing``: the processor runs; results go to ``jobs/<id>/output/``. The results and
  the move to ``sending`` are recorded in one transaction, so a job that was interrupted
  (killed) while processing goes back to ``queued`` at the next start and runs again from a
  clean output folder, and a finished job never runs again. A job interrupted
  ``max_process_attempts`` times is marked ``failed``.
* ``sending``: each result file is marked sent once the destination acknowledged it; a
  failed attempt sets the time of the next one (backoff) and keeps the job. A restart resends
  at most the files in flight, which the destination stores once (same SOP Instance UID).
* ``done`` / ``failed``: finished; ``error`` says why a job failed.

Every change is a transaction in SQLite's write-ahead log with ``synchronous=FULL``, so it
survives ``kill -9`` and power loss. The queue is safe to use from several threads of one
process; :class:`~ctpipe.pacs.node.PacsNode` holds a lock file so that only one process
uses a storage folder.

Example:
    >>> import tempfile
    >>> queue = JobQueue(Path(tempfile.mkdtemp()), clock=lambda: 100.0)
    >>> job_id = queue.receiving_job("1.2.3", "1.2", calling_aet="PACS")
    >>> queue.promote_complete(CompletionPolicy(quiet_period_s=0))
    [1]
    >>> queue.claim_next().state
    'processing'
    >>> queue.get(job_id).process_attempts
    1
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from ctpipe.pacs.completion import CompletionPolicy
from ctpipe.pacs.storage import write_durably

__all__ = ["JOB_STATES", "Job", "JobQueue", "Output"]

LOG = logging.getLogger("ctpipe.pacs")

RECEIVING, QUEUED, PROCESSING, SENDING, DONE, FAILED, SKIPPED = (
    "receiving",
    "queued",
    "processing",
    "sending",
    "done",
    "failed",
    "skipped",
)
#: Every job state, in the order a job moves through them.
JOB_STATES = (RECEIVING, QUEUED, PROCESSING, SENDING, DONE, FAILED, SKIPPED)
#: States of a series' current job: a new instance of the series joins it.
_OPEN_STATES = (RECEIVING, QUEUED, PROCESSING)
#: States of a job whose results were (or are being) delivered.
_DELIVERED_STATES = (SENDING, DONE)
#: File name of the queue database inside the storage folder.
DATABASE_NAME = "queue.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    calling_aet TEXT NOT NULL,
    state TEXT NOT NULL,
    open_associations INTEGER NOT NULL DEFAULT 0,
    interrupted INTEGER NOT NULL DEFAULT 0,
    last_activity REAL NOT NULL,
    process_attempts INTEGER NOT NULL DEFAULT 0,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    incomplete TEXT,
    supersedes INTEGER,
    revised INTEGER NOT NULL DEFAULT 0,
    reopened INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS one_receiving_job_per_series
    ON jobs (series_uid) WHERE state = 'receiving';
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE TABLE IF NOT EXISTS outputs (
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, position)
);
"""
#: Columns added since the first release, added to older databases when they are opened.
_ADDED_COLUMNS = {
    "incomplete": "TEXT",
    "supersedes": "INTEGER",
    "revised": "INTEGER NOT NULL DEFAULT 0",
    "reopened": "INTEGER NOT NULL DEFAULT 0",
}


@dataclass(frozen=True)
class Job:
    """One row of the queue (a snapshot; the queue holds the current state).

    Attributes:
        id: The job number (also its folder name under ``jobs/``).
        series_uid: SeriesInstanceUID of the received instances.
        study_uid: StudyInstanceUID.
        calling_aet: The AE title that sent the first instance.
        state: One of :data:`JOB_STATES`.
        open_associations: Open associations that sent to it (while ``receiving``).
        interrupted: Whether the last association that sent to it was aborted, or the node
            stopped while one was open.
        last_activity: Time (seconds since the epoch) of the last association end or
            instance.
        process_attempts: How often processing started.
        send_attempts: How many sending attempts failed.
        next_attempt_at: Earliest time of the next sending attempt.
        error: Why the job failed, or the last sending error.
        created_at: When the first instance arrived.
        updated_at: When the row last changed.
        incomplete: Why the series may lack instances (completed by the interrupted
            timeout), or None.
        supersedes: The series' previous job, whose instances this job includes, or None.
        revised: Whether a previous job of the series had results to send: this job's
            results revise them.
        reopened: Whether a late instance arrived while the job was being processed (its
            results will be dropped and the job completes again).
    """

    id: int
    series_uid: str
    study_uid: str
    calling_aet: str
    state: str
    open_associations: int
    interrupted: bool
    last_activity: float
    process_attempts: int
    send_attempts: int
    next_attempt_at: float
    error: str | None
    created_at: float
    updated_at: float
    incomplete: str | None
    supersedes: int | None
    revised: bool
    reopened: bool


@dataclass(frozen=True)
class Output:
    """A result file of a job and whether the destination acknowledged it."""

    path: Path
    sent: bool


_JOB_COLUMNS = ", ".join(f.name for f in fields(Job))


class JobQueue:
    """The job queue of one storage folder (see the module docstring).

    Args:
        root: The storage folder; created when missing. The database is
            ``root/queue.sqlite``, job folders are ``root/jobs/<id>/``.
        clock: Returns the current time in seconds (``time.time``; tests pass their own).
    """

    def __init__(self, root: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.root / DATABASE_NAME, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._lock:
            self._db.executescript(_SCHEMA)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    # --- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _row_to_job(self, row: Sequence[object]) -> Job:
        values = dict(zip((f.name for f in fields(Job)), row, strict=True))
        for name in ("interrupted", "revised", "reopened"):
            values[name] = bool(values[name])
        return Job(**values)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # --- folders ---------------------------------------------------------------------------

    def job_folder(self, job_id: int) -> Path:
        """``root/jobs/<id>``, the job's folder."""
        return self.root / "jobs" / f"{job_id:08d}"

    def input_folder(self, job_id: int) -> Path:
        """Where the job's received instances are written."""
        return self.job_folder(job_id) / "input"

    def output_folder(self, job_id: int) -> Path:
        """Where the processor writes the job's results."""
        return self.job_folder(job_id) / "output"

    # --- receiving -------------------------------------------------------------------------

    def receiving_job(
        self,
        series_uid: str,
        study_uid: str,
        *,
        calling_aet: str,
        opens_association: Callable[[int], bool] | None = None,
    ) -> int:
        """The id of the series' open job, reopened or created as needed.

        The series' job in ``receiving`` is used as it is; one in ``queued`` goes back to
        ``receiving``; one in ``processing`` is marked ``reopened``. Without such a job a
        new one is created, superseding the series' last job (see the module docstring).

        Args:
            series_uid: SeriesInstanceUID of the instance being received.
            study_uid: Its StudyInstanceUID.
            calling_aet: The sender's AE title.
            opens_association: Called with the job id inside the same transaction; when it
                returns True (the association's first instance for this job), the job
                counts one more open association. Being one transaction, a job cannot be
                found complete between the lookup and the count.

        Returns:
            The job id; its input folder exists.
        """
        now = self.clock()
        with self._transaction() as db:
            job_id = self._open_job(db, series_uid, study_uid, calling_aet, now)
            if opens_association is not None and opens_association(job_id):
                db.execute(
                    "UPDATE jobs SET open_associations = open_associations + 1,"
                    " last_activity = ?, updated_at = ? WHERE id = ?",
                    (now, now, job_id),
                )
        self.input_folder(job_id).mkdir(parents=True, exist_ok=True)
        return job_id

    def _open_job(
        self, db: sqlite3.Connection, series_uid: str, study_uid: str, calling_aet: str, now: float
    ) -> int:
        placeholders = ", ".join("?" * len(_OPEN_STATES))
        row = db.execute(
            f"SELECT id, state, reopened FROM jobs WHERE series_uid = ? AND state IN"
            f" ({placeholders}) ORDER BY id DESC LIMIT 1",
            (series_uid, *_OPEN_STATES),
        ).fetchone()
        if row is not None:
            job_id, state, reopened = int(row[0]), row[1], row[2]
            if state == QUEUED:
                db.execute(
                    "UPDATE jobs SET state = ?, incomplete = NULL, last_activity = ?,"
                    " updated_at = ? WHERE id = ?",
                    (RECEIVING, now, now, job_id),
                )
                LOG.info("job %d: a late instance arrived while queued; receiving again", job_id)
            elif state == PROCESSING and not reopened:
                db.execute(
                    "UPDATE jobs SET reopened = 1, last_activity = ?, updated_at = ? WHERE id = ?",
                    (now, now, job_id),
                )
                LOG.info(
                    "job %d: a late instance arrived while processing; its results will be "
                    "dropped and the series processed again once complete",
                    job_id,
                )
            return job_id
        last = db.execute(
            "SELECT id, state, revised FROM jobs WHERE series_uid = ? ORDER BY id DESC LIMIT 1",
            (series_uid,),
        ).fetchone()
        supersedes = None if last is None else int(last[0])
        revised = last is not None and (last[1] in _DELIVERED_STATES or bool(last[2]))
        cursor = db.execute(
            "INSERT INTO jobs (series_uid, study_uid, calling_aet, state, last_activity,"
            " created_at, updated_at, supersedes, revised) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (series_uid, study_uid, calling_aet, RECEIVING, now, now, now, supersedes, revised),
        )
        job_id = int(cursor.lastrowid or 0)
        if supersedes is not None:
            LOG.info(
                "job %d: instances of series %s after job %d (%s) ended; the new job includes "
                "its instances",
                job_id,
                series_uid,
                supersedes,
                last[1],
            )
        return job_id

    def lineage(self, job_id: int) -> list[int]:
        """The earlier jobs of a job's series that it supersedes, newest first.

        Example:
            >>> import tempfile
            >>> queue = JobQueue(Path(tempfile.mkdtemp()), clock=lambda: 100.0)
            >>> first = queue.receiving_job("1.2.3", "1.2", calling_aet="PACS")
            >>> queue.fail(first, "test")
            'failed'
            >>> queue.lineage(queue.receiving_job("1.2.3", "1.2", calling_aet="PACS"))
            [1]
        """
        earlier: list[int] = []
        with self._lock:
            current: int | None = job_id
            while current is not None:
                row = self._db.execute(
                    "SELECT supersedes FROM jobs WHERE id = ?", (current,)
                ).fetchone()
                current = None if row is None or row[0] is None else int(row[0])
                if current is not None:
                    if current in earlier or current == job_id:  # pragma: no cover - a cycle
                        break
                    earlier.append(current)
        return earlier

    def gather_inputs(self, job_id: int) -> int:
        """Add the instances of the jobs ``job_id`` supersedes to its input folder.

        Each earlier instance is hard-linked (copied where links are not supported) unless
        the folder already holds an instance with its SOP Instance UID: the newest copy of
        an instance wins. Safe to repeat.

        Returns:
            How many files were added.
        """
        target = self.input_folder(job_id)
        target.mkdir(parents=True, exist_ok=True)
        added = 0
        for earlier in self.lineage(job_id):
            folder = self.input_folder(earlier)
            if not folder.is_dir():
                continue
            for source in sorted(folder.glob("*.dcm")):
                destination = target / source.name
                if destination.exists():
                    continue
                try:
                    os.link(source, destination)
                except FileExistsError:
                    continue
                except OSError:  # a file system without hard links
                    write_durably(destination, source.read_bytes())
                added += 1
        return added

    def association_ended(self, job_ids: Iterable[int], *, aborted: bool) -> None:
        """Count the end of an association that sent to ``job_ids``.

        Args:
            job_ids: The jobs it sent to.
            aborted: True for an A-ABORT or a lost connection; the jobs then wait for the
                interrupted timeout. A normal release clears the interruption.
        """
        now = self.clock()
        with self._transaction() as db:
            for job_id in job_ids:
                db.execute(
                    "UPDATE jobs SET open_associations = MAX(open_associations - 1, 0),"
                    " interrupted = ?, last_activity = ?, updated_at = ? WHERE id = ?",
                    (int(aborted), now, now, job_id),
                )

    def promote_complete(self, policy: CompletionPolicy) -> list[int]:
        """Move every complete ``receiving`` job on; return their ids.

        A complete job goes to ``queued``; one completed by the interrupted timeout records
        why it may be ``incomplete``. By the policy, an incomplete job (``incomplete:
        skip``) or a revision of delivered results (``late_instances: store``) goes to
        ``skipped`` instead, with the reason in ``error``.
        """
        now = self.clock()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, open_associations, interrupted, last_activity, revised, supersedes"
                " FROM jobs WHERE state = ? ORDER BY id",
                (RECEIVING,),
            ).fetchall()
            ready = []
            for job_id, open_count, interrupted, last, revised, supersedes in rows:
                if not policy.is_complete(
                    open_associations=open_count,
                    interrupted=bool(interrupted),
                    last_activity=last,
                    now=now,
                ):
                    continue
                ready.append(job_id)
                incomplete = policy.incomplete_reason() if interrupted else None
                state, error = QUEUED, None
                if revised and policy.late_instances == "store":
                    state = SKIPPED
                    error = (
                        f"instances arrived after the results of job {supersedes} were sent; "
                        "stored, not processed (completion.late_instances: store)"
                    )
                elif incomplete and policy.incomplete == "skip":
                    state = SKIPPED
                    error = f"series incomplete: {incomplete}; not processed (completion."
                    error += "incomplete: skip)"
                db.execute(
                    "UPDATE jobs SET state = ?, incomplete = ?, error = ?, updated_at = ?"
                    " WHERE id = ?",
                    (state, incomplete, error, now, job_id),
                )
        return ready

    # --- start-up ----------------------------------------------------------------------------

    def recover(self, max_process_attempts: int) -> dict[str, int]:
        """Repair the state left by a node that stopped abruptly; call before serving.

        * ``receiving`` jobs with open associations: those associations died with the
          node, so the jobs count as interrupted, from now.
        * ``processing`` jobs: back to ``queued`` (their output is discarded when they run
          again), or ``failed`` once they were started ``max_process_attempts`` times.

        A ``processing`` job that a late instance reopened goes back to ``receiving``.

        Returns:
            How many jobs were interrupted, requeued and failed.
        """
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, reopened = 0, process_attempts = 0, updated_at = ?"
                " WHERE state = ? AND reopened = 1",
                (RECEIVING, now, PROCESSING),
            )
            interrupted = db.execute(
                "UPDATE jobs SET open_associations = 0, interrupted = 1, last_activity = ?,"
                " updated_at = ? WHERE state = ? AND open_associations > 0",
                (now, now, RECEIVING),
            ).rowcount
            failed = db.execute(
                "UPDATE jobs SET state = ?, error = ?, updated_at = ?"
                " WHERE state = ? AND process_attempts >= ?",
                (
                    FAILED,
                    f"processing was interrupted {max_process_attempts} times "
                    "(the node stopped while it ran)",
                    now,
                    PROCESSING,
                    max_process_attempts,
                ),
            ).rowcount
            requeued = db.execute(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE state = ?",
                (QUEUED, now, PROCESSING),
            ).rowcount
        return {"interrupted": interrupted, "requeued": requeued, "failed": failed}

    # --- processing --------------------------------------------------------------------------

    def claim_next(self) -> Job | None:
        """Move the oldest ``queued`` job to ``processing`` and return it (None when none)."""
        now = self.clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = ? ORDER BY id LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = ?, process_attempts = process_attempts + 1,"
                " updated_at = ? WHERE id = ?",
                (PROCESSING, now, row[0]),
            )
        return self.get(int(row[0]))

    def finish_processing(self, job_id: int, outputs: Sequence[Path], *, send: bool) -> str:
        """Record a processed job's results; it moves to ``sending`` (or ``done``).

        Args:
            job_id: A job in state ``processing``.
            outputs: The result files to send (inside the storage folder).
            send: False when there is no destination: the job is then ``done``.

        Returns:
            The job's new state; ``receiving`` when a late instance reopened the job (the
            results are then not recorded).

        Raises:
            ValueError: When an output lies outside the storage folder.
        """
        relative = [self._relative(path) for path in outputs]
        state = SENDING if send and relative else DONE
        now = self.clock()
        with self._transaction() as db:
            self._expect(db, job_id, PROCESSING)
            if self._reopen_if_late(db, job_id, now):
                return RECEIVING
            db.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
            db.executemany(
                "INSERT INTO outputs (job_id, position, path) VALUES (?, ?, ?)",
                [(job_id, n, path) for n, path in enumerate(relative)],
            )
            db.execute(
                "UPDATE jobs SET state = ?, error = NULL, next_attempt_at = ?, updated_at = ?"
                " WHERE id = ?",
                (state, now, now, job_id),
            )
        return state

    def fail(self, job_id: int, error: str) -> str:
        """Mark a job ``failed`` with the reason; return its new state.

        A ``processing`` job that a late instance reopened goes back to ``receiving``
        instead: it runs again on the whole series.
        """
        now = self.clock()
        with self._transaction() as db:
            if self._reopen_if_late(db, job_id, now):
                return RECEIVING
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                (FAILED, error, now, job_id),
            )
        return FAILED

    @staticmethod
    def _reopen_if_late(db: sqlite3.Connection, job_id: int, now: float) -> bool:
        return (
            db.execute(
                "UPDATE jobs SET state = ?, reopened = 0, process_attempts = 0, updated_at = ?"
                " WHERE id = ? AND state = ? AND reopened = 1",
                (RECEIVING, now, job_id, PROCESSING),
            ).rowcount
            > 0
        )

    # --- sending ---------------------------------------------------------------------------

    def next_to_send(self) -> Job | None:
        """The ``sending`` job due soonest whose next attempt time has come, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT 1",
                (SENDING, self.clock()),
            ).fetchone()
        return None if row is None else self._row_to_job(row)

    def outputs(self, job_id: int) -> list[Output]:
        """A job's result files, in the order the processor returned them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path, sent FROM outputs WHERE job_id = ? ORDER BY position", (job_id,)
            ).fetchall()
        return [Output(self.root / path, bool(sent)) for path, sent in rows]

    def mark_sent(self, job_id: int, path: Path) -> None:
        """Record that the destination acknowledged ``path``."""
        with self._transaction() as db:
            db.execute(
                "UPDATE outputs SET sent = 1 WHERE job_id = ? AND path = ?",
                (job_id, self._relative(path)),
            )

    def send_failed(self, job_id: int, error: str, delay_s: float) -> int:
        """Count a failed sending attempt; the next one is ``delay_s`` from now.

        Returns:
            The number of failed attempts so far.
        """
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET send_attempts = send_attempts + 1, next_attempt_at = ?,"
                " error = ?, updated_at = ? WHERE id = ?",
                (now + delay_s, error, now, job_id),
            )
            return int(
                db.execute("SELECT send_attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            )

    def finish_sending(self, job_id: int) -> None:
        """Mark a job ``done`` once every output is sent.

        Raises:
            ValueError: When some output is not marked sent.
        """
        now = self.clock()
        with self._transaction() as db:
            self._expect(db, job_id, SENDING)
            unsent = db.execute(
                "SELECT COUNT(*) FROM outputs WHERE job_id = ? AND sent = 0", (job_id,)
            ).fetchone()[0]
            if unsent:
                raise ValueError(f"job {job_id} still has {unsent} unsent output(s)")
            db.execute(
                "UPDATE jobs SET state = ?, error = NULL, updated_at = ? WHERE id = ?",
                (DONE, now, job_id),
            )

    # --- inspection ----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job with this id.

        Raises:
            KeyError: When there is none.
        """
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id} in {self.root / DATABASE_NAME}")
        return self._row_to_job(row)

    def jobs(self, state: str | None = None) -> list[Job]:
        """Every job (or those in ``state``), oldest first."""
        query = f"SELECT {_JOB_COLUMNS} FROM jobs"
        params: tuple[object, ...] = ()
        if state is not None:
            query, params = query + " WHERE state = ?", (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        return [self._row_to_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        found = dict(rows)
        return {state: int(found.get(state, 0)) for state in JOB_STATES}

    # --- helpers -------------------------------------------------------------------------------

    def _relative(self, path: Path) -> str:
        resolved = Path(path).resolve()
        try:
            return resolved.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            raise ValueError(
                f"outputs must lie inside the storage folder {self.root}, got {path}"
            ) from None

    @staticmethod
    def _expect(db: sqlite3.Connection, job_id: int, state: str) -> None:
        row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row[0] != state:
            found = "no such job" if row is None else f"state {row[0]!r}"
            raise ValueError(f"job {job_id} must be in state {state!r}, found {found}")
