"""When a series is complete."""

from __future__ import annotations

import threading

import pytest

from ctpipe.pacs.completion import AssociationTracker, CompletionPolicy


@pytest.mark.parametrize(
    "open_associations, interrupted, elapsed, complete",
    [
        (0, False, 4.9, False),
        (0, False, 5.0, True),
        (1, False, 999.0, False),
        (0, True, 5.0, False),
        (0, True, 59.9, False),
        (0, True, 60.0, True),
        (2, True, 999.0, False),
    ],
)
def test_quiet_period_and_interrupted_timeout(open_associations, interrupted, elapsed, complete):
    policy = CompletionPolicy(quiet_period_s=5, interrupted_timeout_s=60)
    state = dict(open_associations=open_associations, interrupted=interrupted)
    assert policy.is_complete(**state, last_activity=1000.0, now=1000.0 + elapsed) is complete


@pytest.mark.parametrize("field", ["quiet_period_s", "interrupted_timeout_s"])
def test_negative_waits_are_refused(field):
    with pytest.raises(ValueError, match=f"{field} must be at least 0, got -1"):
        CompletionPolicy(**{field: -1})


def test_tracker_counts_each_job_once_per_association_across_threads():
    tracker = AssociationTracker()
    firsts = []

    def send(assoc):
        for job in (1, 2, 1, 2, 3):
            firsts.append((assoc, job, tracker.touch(assoc, job)))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(first for *_, first in firsts) == 4 * 3
    assert tracker.open_count() == 4
    assert [sorted(tracker.end(n)) for n in range(4)] == [[1, 2, 3]] * 4
    assert tracker.open_count() == 0
