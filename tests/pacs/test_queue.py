"""The on-disk job queue: states, restarts and exactly-once transitions."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from ctpipe.pacs.completion import CompletionPolicy
from ctpipe.pacs.queue import JobQueue

POLICY = CompletionPolicy(quiet_period_s=10, interrupted_timeout_s=100)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(tmp_path, clock):
    q = JobQueue(tmp_path / "storage", clock=clock)
    yield q
    q.close()


def _processed(queue, clock, series="1.2.3", outputs=1):
    job_id = queue.receiving_job(series, "1.2", calling_aet="PACS")
    clock.now += POLICY.quiet_period_s
    assert job_id in queue.promote_complete(POLICY)
    job = queue.claim_next()
    folder = queue.output_folder(job.id)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(outputs):
        path = folder / f"{n}.dcm"
        path.write_bytes(b"x")
        files.append(path)
    queue.finish_processing(job.id, files, send=True)
    return job.id, files


def test_one_receiving_job_per_series_and_a_late_instance_reopens_a_queued_one(queue, clock):
    first = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    assert queue.receiving_job("1.2.3", "1.2", calling_aet="B") == first
    assert queue.receiving_job("1.2.4", "1.2", calling_aet="A") != first
    clock.now += 10
    assert queue.promote_complete(POLICY) == [first, first + 1]
    # a late instance of the queued series joins its job, which waits for completion again
    assert queue.receiving_job("1.2.3", "1.2", calling_aet="A") == first
    assert [j.state for j in queue.jobs()] == ["receiving", "queued"]
    assert queue.promote_complete(POLICY) == []
    clock.now += 10
    assert queue.promote_complete(POLICY) == [first]
    assert len(queue.jobs()) == 2


def _open(queue, series="1.2.3", first=True):
    return queue.receiving_job(series, "1.2", calling_aet="A", opens_association=lambda _: first)


def test_open_associations_hold_a_series_back(queue, clock):
    job_id = _open(queue)
    assert _open(queue) == job_id and _open(queue, first=False) == job_id
    assert queue.get(job_id).open_associations == 2
    clock.now += 1000
    queue.association_ended([job_id], aborted=False)
    assert queue.promote_complete(POLICY) == []
    queue.association_ended([job_id], aborted=False)
    assert queue.promote_complete(POLICY) == []  # the quiet period starts at the end
    clock.now += 10
    assert queue.promote_complete(POLICY) == [job_id]


def test_an_abort_waits_for_the_interrupted_timeout_and_a_release_clears_it(queue, clock):
    job_id = _open(queue)
    queue.association_ended([job_id], aborted=True)
    clock.now += 50
    assert queue.get(job_id).interrupted and queue.promote_complete(POLICY) == []
    _open(queue)
    queue.association_ended([job_id], aborted=False)
    clock.now += 10
    assert queue.promote_complete(POLICY) == [job_id]


def test_claims_are_exclusive_across_threads(queue, clock):
    for n in range(20):
        queue.receiving_job(f"1.2.{n}", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    claimed = []

    def worker():
        while (job := queue.claim_next()) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(1, 21))


def test_recover_after_an_abrupt_stop(tmp_path, clock):
    queue = JobQueue(tmp_path, clock=clock)
    open_job = _open(queue, "1.2.1")
    running = queue.receiving_job("1.2.2", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    assert queue.claim_next().id == running
    queue.close()  # the process dies here

    clock.now += 5
    queue = JobQueue(tmp_path, clock=clock)
    assert queue.recover(max_process_attempts=2) == {"interrupted": 1, "requeued": 1, "failed": 0}
    job = queue.get(open_job)
    assert (job.state, job.open_associations, job.interrupted, job.last_activity) == (
        "receiving",
        0,
        True,
        clock.now,
    )
    assert queue.get(running).state == "queued"
    assert queue.claim_next().process_attempts == 2
    assert queue.recover(max_process_attempts=2) == {"interrupted": 0, "requeued": 0, "failed": 1}
    failed = queue.get(running)
    assert failed.state == "failed" and "interrupted 2 times" in failed.error
    queue.close()


def test_results_are_recorded_with_the_move_to_sending(queue, clock):
    job_id, files = _processed(queue, clock, outputs=3)
    job = queue.get(job_id)
    assert job.state == "sending" and job.process_attempts == 1
    assert [(o.path, o.sent) for o in queue.outputs(job_id)] == [(f, False) for f in files]
    assert queue.next_to_send().id == job_id
    with pytest.raises(ValueError, match="must be in state 'processing', found state 'sending'"):
        queue.finish_processing(job_id, files, send=True)


def test_outputs_outside_the_storage_are_refused(queue, clock, tmp_path):
    queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    job = queue.claim_next()
    with pytest.raises(ValueError, match="outputs must lie inside the storage folder"):
        queue.finish_processing(job.id, [tmp_path / "elsewhere.dcm"], send=True)
    assert queue.get(job.id).state == "processing"


def test_no_outputs_or_no_destination_means_done(queue, clock):
    job_id = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    queue.claim_next()
    assert queue.finish_processing(job_id, [], send=True) == "done"


def test_sending_failures_back_off_and_partial_progress_is_kept(queue, clock):
    job_id, files = _processed(queue, clock, outputs=2)
    queue.mark_sent(job_id, files[0])
    assert queue.send_failed(job_id, "destination down", delay_s=4.0) == 1
    assert queue.next_to_send() is None
    clock.now += 4
    assert queue.next_to_send().id == job_id
    assert [o.sent for o in queue.outputs(job_id)] == [True, False]
    with pytest.raises(ValueError, match="still has 1 unsent output"):
        queue.finish_sending(job_id)
    queue.mark_sent(job_id, files[1])
    queue.finish_sending(job_id)
    job = queue.get(job_id)
    assert (job.state, job.error, job.send_attempts) == ("done", None, 1)
    assert queue.counts()["done"] == 1


def test_state_survives_reopening_the_database(tmp_path, clock):
    queue = JobQueue(tmp_path, clock=clock)
    job_id, files = _processed(queue, clock, outputs=2)
    queue.mark_sent(job_id, files[0])
    queue.close()
    reopened = JobQueue(tmp_path, clock=clock)
    assert reopened.get(job_id).state == "sending"
    assert [o.sent for o in reopened.outputs(job_id)] == [True, False]
    with pytest.raises(KeyError, match="no job 99"):
        reopened.get(99)
    reopened.close()


def test_the_database_refuses_two_receiving_jobs_for_one_series(tmp_path, queue):
    queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    db = sqlite3.connect(tmp_path / "storage" / "queue.sqlite")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO jobs (series_uid, study_uid, calling_aet, state, last_activity,"
            " created_at, updated_at) VALUES ('1.2.3', '1.2', 'B', 'receiving', 0, 0, 0)"
        )
    db.close()


def test_a_late_instance_while_processing_drops_the_run_and_reopens_the_job(queue, clock):
    job_id = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    assert queue.claim_next().id == job_id
    assert _open(queue) == job_id  # a late instance, in a new association
    assert queue.get(job_id).reopened
    output = queue.output_folder(job_id) / "seg.dcm"
    output.parent.mkdir(parents=True)
    output.write_bytes(b"x")
    assert queue.finish_processing(job_id, [output], send=True) == "receiving"
    job = queue.get(job_id)
    assert (job.state, job.reopened, job.process_attempts) == ("receiving", False, 0)
    assert queue.outputs(job_id) == [] and queue.next_to_send() is None
    queue.association_ended([job_id], aborted=False)
    clock.now += 10
    assert queue.promote_complete(POLICY) == [job_id]
    assert queue.claim_next().id == job_id
    assert queue.finish_processing(job_id, [output], send=True) == "sending"
    assert len(queue.jobs()) == 1


def test_a_failure_of_a_reopened_job_is_dropped_too(queue, clock):
    job_id = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    queue.claim_next()
    queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    assert queue.fail(job_id, "a file vanished while reading") == "receiving"
    assert queue.get(job_id).error is None
    queue.claim_next()  # nothing: the job waits for completion
    assert queue.get(job_id).state == "receiving"


def test_a_reopened_job_killed_while_processing_receives_again_after_recover(tmp_path, clock):
    queue = JobQueue(tmp_path, clock=clock)
    job_id = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    clock.now += 10
    queue.promote_complete(POLICY)
    queue.claim_next()
    _open(queue)
    queue.close()  # killed
    queue = JobQueue(tmp_path, clock=clock)
    assert queue.recover(max_process_attempts=1) == {"interrupted": 1, "requeued": 0, "failed": 0}
    job = queue.get(job_id)
    assert (job.state, job.reopened, job.interrupted, job.process_attempts) == (
        "receiving",
        False,
        True,
        0,
    )
    queue.close()


@pytest.mark.parametrize(
    "late_instances, state, revised", [("reprocess", "queued", True), ("store", "skipped", True)]
)
def test_instances_after_results_were_sent_supersede_the_job(
    queue, clock, late_instances, state, revised
):
    first, _ = _processed(queue, clock)
    (queue.input_folder(first) / "1.2.3.1.dcm").write_bytes(b"first copy")
    (queue.input_folder(first) / "1.2.3.2.dcm").write_bytes(b"only in the first job")
    later = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    assert later != first
    (queue.input_folder(later) / "1.2.3.1.dcm").write_bytes(b"sent again")
    (queue.input_folder(later) / "1.2.3.3.dcm").write_bytes(b"late")
    job = queue.get(later)
    assert (job.supersedes, job.revised, queue.lineage(later)) == (first, revised, [first])
    clock.now += 10
    policy = CompletionPolicy(quiet_period_s=10, late_instances=late_instances)
    assert queue.promote_complete(policy) == [later]
    job = queue.get(later)
    assert job.state == state
    if state == "skipped":
        assert f"after the results of job {first} were sent" in job.error
        assert "late_instances: store" in job.error
    assert queue.gather_inputs(later) == 1 and queue.gather_inputs(later) == 0
    files = {p.name: p.read_bytes() for p in queue.input_folder(later).iterdir()}
    assert files == {
        "1.2.3.1.dcm": b"sent again",  # the newest copy wins
        "1.2.3.2.dcm": b"only in the first job",
        "1.2.3.3.dcm": b"late",
    }
    assert queue.get(first).state == "sending"  # the first result is not touched


def test_a_new_job_after_a_failure_is_not_a_revision_but_keeps_the_lineage(queue, clock):
    first = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    queue.fail(first, "test")
    second = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    assert (queue.get(second).supersedes, queue.get(second).revised) == (first, False)
    queue.fail(second, "test")
    third = queue.receiving_job("1.2.3", "1.2", calling_aet="A")
    assert queue.lineage(third) == [second, first]


@pytest.mark.parametrize("incomplete, state", [("mark", "queued"), ("skip", "skipped")])
def test_a_series_completed_by_the_interrupted_timeout_is_incomplete(
    queue, clock, incomplete, state
):
    job_id = _open(queue)
    queue.association_ended([job_id], aborted=True)
    policy = CompletionPolicy(quiet_period_s=10, interrupted_timeout_s=100, incomplete=incomplete)
    clock.now += 100
    assert queue.promote_complete(policy) == [job_id]
    job = queue.get(job_id)
    assert job.state == state
    assert job.incomplete.startswith("the association sending it was aborted")
    assert "interrupted_timeout_s (100 s)" in job.incomplete
    if state == "skipped":
        assert job.error.startswith("series incomplete: ") and "incomplete: skip" in job.error
    # a complete series records nothing
    other = _open(queue, "1.2.4")
    queue.association_ended([other], aborted=False)
    clock.now += 10
    queue.promote_complete(policy)
    assert queue.get(other).incomplete is None


def test_a_database_of_an_earlier_version_gains_the_new_columns(tmp_path, clock):
    db = sqlite3.connect(tmp_path / "queue.sqlite")
    db.executescript(
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, series_uid TEXT NOT NULL,
            study_uid TEXT NOT NULL, calling_aet TEXT NOT NULL, state TEXT NOT NULL,
            open_associations INTEGER NOT NULL DEFAULT 0,
            interrupted INTEGER NOT NULL DEFAULT 0, last_activity REAL NOT NULL,
            process_attempts INTEGER NOT NULL DEFAULT 0,
            send_attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0, error TEXT,
            created_at REAL NOT NULL, updated_at REAL NOT NULL);
        INSERT INTO jobs (series_uid, study_uid, calling_aet, state, last_activity,
            created_at, updated_at) VALUES ('1.2.3', '1.2', 'A', 'done', 0, 0, 0);"""
    )
    db.close()
    queue = JobQueue(tmp_path, clock=clock)
    (job,) = queue.jobs()
    assert (job.state, job.incomplete, job.supersedes, job.revised) == ("done", None, None, False)
    assert queue.get(queue.receiving_job("1.2.3", "1.2", calling_aet="A")).revised
    queue.close()
