"""Batches on Dask distributed: one task per series, on an existing cluster or a local one.

:func:`connect` gives a ``distributed.Client``: to a running scheduler (``--scheduler
tcp://host:8786``, e.g. one started by dask-jobqueue on Slurm or by the Dask Helm chart on
Kubernetes), or to a ``LocalCluster`` of ``--workers N`` processes (one thread each, torch
threads split between them) started here and stopped afterwards.

:func:`run_on_cluster` submits a task (:func:`ctpipe.workflow.batch.process_job`) per series:
each worker loads the workflow's models once and keeps them for its next series; a task
can ask for resources (``{"GPU": 1}``) so a worker started with ``--resources GPU=1``
runs one series at a time on its GPU. Results come back as they finish and the batch
summary is written by the caller, so run records, resume and failure isolation are those
of the local runner. A task whose worker dies is retried once by Dask and otherwise
recorded as failed. Every worker must see the input tree and the output folder at the
same paths (a shared file system).

Example:
    >>> client = connect(workers=2)  # doctest: +SKIP
    >>> run_batch(workflow, "tree", "out", client=client)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from ctpipe.errors import CTPipeError

__all__ = ["ClusterError", "connect", "parse_resources", "run_on_cluster"]


class ClusterError(CTPipeError):
    """Dask is missing, or the scheduler cannot be reached."""


def connect(
    scheduler: str | None = None, workers: int | None = None, *, timeout: float = 20.0
) -> Any:
    """A Dask client: to ``scheduler``, or to a new ``LocalCluster`` of ``workers``.

    Args:
        scheduler: Address of a running scheduler.
        workers: Worker processes of a local cluster started here.
        timeout: Seconds to wait for the scheduler.

    Raises:
        ClusterError: ``dask[distributed]`` is not installed (names the extra), both or
            neither of ``scheduler`` and ``workers`` are given, or the scheduler does not
            answer.
    """
    if (scheduler is None) == (workers is None):
        raise ClusterError("give either a scheduler address or a number of local workers")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "Dask batches need dask[distributed]: pip install 'ctpipe[dask]'"
        ) from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler {scheduler}: {err}") from None
    if workers < 1:
        raise ClusterError(f"workers must be >= 1, got {workers}")
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
    )
    client = Client(cluster)
    client.ctpipe_owns_cluster = True  # closed with the client by close()
    return client


def close(client: Any) -> None:
    """Close the client, and the local cluster when :func:`connect` started it."""
    cluster = client.cluster if getattr(client, "ctpipe_owns_cluster", False) else None
    client.close()
    if cluster is not None:
        cluster.close()


def parse_resources(text: str | None) -> dict[str, float]:
    """``"GPU=1,MEM=8e9"`` -> ``{"GPU": 1.0, "MEM": 8e9}``.

    Example:
        >>> parse_resources("GPU=1")
        {'GPU': 1.0}
        >>> parse_resources("GPU")
        Traceback (most recent call last):
        ...
        ValueError: resources must be NAME=AMOUNT pairs separated by commas, got 'GPU'
    """
    if not text:
        return {}
    resources = {}
    for part in text.split(","):
        name, _, amount = part.partition("=")
        try:
            resources[name.strip()] = float(amount)
        except ValueError:
            raise ValueError(
                f"resources must be NAME=AMOUNT pairs separated by commas, got {text!r}"
            ) from None
        if not name.strip():
            raise ValueError(
                f"resources must be NAME=AMOUNT pairs separated by commas, got {text!r}"
            )
    return resources


def run_on_cluster(
    client: Any,
    jobs: Sequence[Any],
    workflow: Any,
    output: Path,
    workflow_source: str | PathLike[str],
    resources: dict[str, float],
    emit: Callable[[dict[str, Any]], None],
    *,
    task: Callable[..., dict[str, Any]],
    overwrite: bool = False,
) -> None:
    """Submit ``task`` for each job and ``emit`` each summary row as its task finishes.

    ``task(job, workflow, output, resume=, workflow_source=, overwrite=)`` runs one series
    on a worker and returns its summary row (:func:`ctpipe.workflow.batch.process_job`).
    """
    from distributed import as_completed

    batch = uuid.uuid4().hex[:8]
    futures = {}
    for job in jobs:
        future = client.submit(
            task,
            job,
            workflow,
            str(output),
            resume=True,
            workflow_source=str(workflow_source),
            overwrite=overwrite,
            key=f"ctpipe-{batch}-{job.name}",
            resources=resources or None,
            retries=1,
            pure=False,
        )
        futures[future] = job
    for future in as_completed(futures):
        job = futures[future]
        try:
            row = future.result()
        except Exception as err:  # the worker died or the task could not run
            row = {
                "name": job.name,
                "input": job.input,
                "series_uid": job.series.first.series_instance_uid,
                "status": "failed",
                "seconds": 0.0,
                "error": f"task failed on the cluster: {type(err).__name__}: {err}",
            }
        emit(row)
