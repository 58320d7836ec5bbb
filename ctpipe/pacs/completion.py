"""When is a received series complete?

DICOM has no "end of series" message, so a node infers it. A series is complete when

* no open association is still sending to it, and
* the last association that sent to it ended normally (A-RELEASE) at least
  ``quiet_period_s`` ago, or
* it was interrupted (the association was aborted, or the node stopped while it was open)
  at least ``interrupted_timeout_s`` ago. The longer wait gives the sender time to send the
  series again in full, so that a partial series is not processed on its own; the instances
  already received are kept and joined by the new ones.

A series that completes by the second rule may lack instances: with ``incomplete: mark`` (the
default) it is processed and marked incomplete (the job, the run record, the report and the
SeriesDescription of every result), with ``incomplete: skip`` it is not processed (the job
ends ``skipped``, its instances stay in the storage folder).

An instance that arrives after its series was complete (a *late instance*) never starts a
second, partial job. Until the series' results are sent, it joins the series' job: a queued
job waits again, a job being processed is processed again once the series is complete (the
results of the run in progress are dropped), so the destination gets one result per series.
Once results were sent, ``late_instances: reprocess`` (the default) processes the whole
series again (the earlier instances and the late ones) and sends the new result marked
``REVISED``; ``late_instances: store`` keeps the instances without processing them (the job
ends ``skipped``).

:class:`AssociationTracker` records, in memory, which series each open association has sent
to, so that the node can update them when the association ends.

Example:
    >>> policy = CompletionPolicy(quiet_period_s=5, interrupted_timeout_s=60)
    >>> policy.is_complete(open_associations=0, interrupted=False, last_activity=100, now=106)
    True
    >>> policy.is_complete(open_associations=0, interrupted=True, last_activity=100, now=106)
    False
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["AssociationTracker", "CompletionPolicy"]


@dataclass(frozen=True)
class CompletionPolicy:
    """The waiting times after which a series counts as complete (the ``completion`` section).

    Args:
        quiet_period_s: Seconds after the last association ended normally.
        interrupted_timeout_s: Seconds after an interruption (abort, node restart).
        incomplete: What happens to a series completed by the interrupted timeout:
            ``mark`` (process it, marked incomplete) or ``skip`` (do not process it).
        late_instances: What happens to instances arriving after the series' results were
            sent: ``reprocess`` (process the whole series again, send a revised result) or
            ``store`` (keep them, do not process them).

    Example:
        >>> CompletionPolicy(quiet_period_s=-1, interrupted_timeout_s=0)
        Traceback (most recent call last):
        ...
        ValueError: quiet_period_s must be at least 0, got -1
    """

    quiet_period_s: float = 10.0
    interrupted_timeout_s: float = 3600.0
    incomplete: Literal["mark", "skip"] = "mark"
    late_instances: Literal["reprocess", "store"] = "reprocess"

    def __post_init__(self) -> None:
        for name in ("quiet_period_s", "interrupted_timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.incomplete not in ("mark", "skip"):
            raise ValueError(f"incomplete must be 'mark' or 'skip', got {self.incomplete!r}")
        if self.late_instances not in ("reprocess", "store"):
            raise ValueError(
                f"late_instances must be 'reprocess' or 'store', got {self.late_instances!r}"
            )

    def incomplete_reason(self) -> str:
        """Why a series completed by the interrupted timeout may lack instances.

        Example:
            >>> CompletionPolicy(interrupted_timeout_s=60).incomplete_reason()  # doctest: +ELLIPSIS
            'the association sending it was aborted ... within interrupted_timeout_s (60 s)'
        """
        return (
            "the association sending it was aborted (or the node stopped while it was open) "
            f"and nothing more arrived within interrupted_timeout_s "
            f"({self.interrupted_timeout_s:g} s)"
        )

    def wait_s(self, interrupted: bool) -> float:
        """The waiting time that applies."""
        return self.interrupted_timeout_s if interrupted else self.quiet_period_s

    def is_complete(
        self, *, open_associations: int, interrupted: bool, last_activity: float, now: float
    ) -> bool:
        """Whether a series with this state is complete at time ``now`` (seconds).

        Example:
            >>> CompletionPolicy(1, 10).is_complete(
            ...     open_associations=1, interrupted=False, last_activity=0, now=99)
            False
        """
        if open_associations > 0:
            return False
        return now - last_activity >= self.wait_s(interrupted)


class AssociationTracker:
    """Which series (job ids) each open association has sent instances to. Thread-safe.

    Example:
        >>> tracker = AssociationTracker()
        >>> tracker.touch("assoc-1", 7), tracker.touch("assoc-1", 7), tracker.touch("assoc-1", 8)
        (True, False, True)
        >>> sorted(tracker.end("assoc-1")), tracker.end("assoc-1")
        ([7, 8], set())
        >>> class Association: ...
        >>> late = Association()
        >>> tracker.end(late), tracker.touch(late, 9)
        (set(), False)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[Hashable, set[int]] = {}
        self._ended: weakref.WeakSet[Any] = weakref.WeakSet()

    def touch(self, association: Hashable, job_id: int) -> bool:
        """Record that ``association`` sent to ``job_id``; True the first time.

        An association that has already ended (its connection dropped while an instance
        was being stored) is not counted again, so it cannot hold a series open.
        """
        with self._lock:
            if self._has_ended(association):
                return False
            jobs = self._jobs.setdefault(association, set())
            first = job_id not in jobs
            jobs.add(job_id)
            return first

    def end(self, association: Hashable) -> set[int]:
        """Forget ``association``; return the job ids it sent to (empty the second time)."""
        with self._lock:
            with contextlib.suppress(TypeError):  # objects that take no weak reference
                self._ended.add(association)
            return self._jobs.pop(association, set())

    def _has_ended(self, association: Hashable) -> bool:
        try:
            return association in self._ended
        except TypeError:
            return False

    def open_count(self) -> int:
        """How many associations have sent at least one instance and are still open."""
        with self._lock:
            return len(self._jobs)
