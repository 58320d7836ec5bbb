"""Weight averaging of checkpoints along one training run (stochastic weight averaging).

Izmailov et al. (UAI 2018) average the weights a run visits at a constant learning rate:
the mean lies nearer the centre of a wide minimum than any single checkpoint and often
generalises better, at no cost at inference. :func:`average_checkpoints` takes the
element-wise mean of the network states of several ctpipe checkpoints of one model and
writes it as a ctpipe checkpoint (network and record) that the loaders read like any
other. RED-CNN has no batch normalisation, so no statistics need recomputing after
averaging; a network with integer buffers keeps those of the last checkpoint.

Example:
    >>> import tempfile
    >>> from ctpipe.checkpoints.denoiser import load_denoiser
    >>> from ctpipe.checkpoints.file import save_checkpoint
    >>> from ctpipe.nets import build_denoiser
    >>> folder = tempfile.mkdtemp()
    >>> paths = [
    ...     save_checkpoint(f"{folder}/{i}.pt", build_denoiser("redcnn", filters=4),
    ...                     model_name="redcnn", iteration=100 * i)
    ...     for i in (1, 2)
    ... ]
    >>> mean = load_denoiser(average_checkpoints(paths, f"{folder}/mean.pt"))
    >>> [entry["iteration"] for entry in mean.checkpoint_record["averaged_from"]]
    [100, 200]
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from ctpipe.checkpoints.file import (
    CHECKPOINT_FORMAT,
    NETWORK_KEY,
    RECORD_KEY,
    read_checkpoint,
    state_sha256,
)
from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path

__all__ = ["average_checkpoints"]


def average_checkpoints(
    checkpoints: Sequence[str | PathLike[str]],
    path: str | PathLike[str],
    *,
    note: str = "",
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> Path:
    """Write the mean of the network weights of ``checkpoints`` as one checkpoint.

    Args:
        checkpoints: Two or more ctpipe checkpoints of the same model (name, keyword
            arguments and tensor shapes), in training order.
        path: The ``.pt`` file to write (atomically), holding ``"network"`` and the
            ``"ctpipe"`` record of the last checkpoint with ``network_sha256`` of the mean
            and ``averaged_from`` (file name, epoch, iteration and sha256 of each source).
        note: Free text stored in the record under ``"note"`` (e.g. a model card's name).
        checkpoint_format: The ``format`` every source must have (denoisers by default).

    Returns:
        The path written.

    Raises:
        InputError: Fewer than two checkpoints, a file that is not a ctpipe checkpoint of
            that format, or checkpoints of different models (the message names the file).
    """
    import torch

    if len(checkpoints) < 2:
        raise InputError(path, f"averaging needs 2 or more checkpoints, got {len(checkpoints)}")
    sources = [read_checkpoint(p, checkpoint_format=checkpoint_format) for p in checkpoints]
    first = sources[0]
    for source_path, source in zip(checkpoints[1:], sources[1:], strict=True):
        _check_same_model(source_path, source, first)
    states = [source[NETWORK_KEY] for source in sources]
    mean = {}
    for name, last in states[-1].items():
        if torch.is_floating_point(last):
            mean[name] = torch.stack([state[name].double() for state in states]).mean(0)
            mean[name] = mean[name].to(last.dtype)
        else:
            mean[name] = last.clone()
    record = dict(sources[-1][RECORD_KEY])
    record["network_sha256"] = state_sha256(mean)
    record["averaged_from"] = [
        {
            "file": Path(source_path).name,
            "epoch": source[RECORD_KEY].get("epoch"),
            "iteration": source[RECORD_KEY].get("iteration"),
            "network_sha256": source[RECORD_KEY].get("network_sha256"),
        }
        for source_path, source in zip(checkpoints, sources, strict=True)
    ]
    if note:
        record["note"] = note
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({NETWORK_KEY: mean, RECORD_KEY: record}, tmp)
    return path


def _check_same_model(path: str | PathLike[str], source: dict, first: dict) -> None:
    """Refuse a checkpoint whose model or tensor shapes differ from the first one's."""
    model, first_model = source[RECORD_KEY].get("model"), first[RECORD_KEY].get("model")
    if model != first_model:
        raise InputError(path, f"model {model} differs from the first checkpoint's {first_model}")
    shapes = {k: tuple(v.shape) for k, v in source[NETWORK_KEY].items()}
    first_shapes = {k: tuple(v.shape) for k, v in first[NETWORK_KEY].items()}
    if shapes != first_shapes:
        raise InputError(path, "network tensors differ in names or shapes from the first's")
