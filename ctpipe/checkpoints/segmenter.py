"""Self-describing segmenter checkpoints: the network, its class map and its preprocessing.

A segmenter checkpoint is a ctpipe checkpoint (:mod:`ctpipe.checkpoints.file`) whose
record has ``format`` :data:`SEGMENTER_FORMAT` and holds everything inference needs:

* ``model``: ``{"name": "unet" | "segresnet", "kwargs": <SegmenterConfig as plain data>}``
  (the class map included), rebuilt by :func:`ctpipe.nets.build_segmenter`;
* ``inference``: the preprocessing and sliding-window settings the network was trained
  and validated with (HU window, orientation, target spacing, ROI size, overlap, blend
  mode), the defaults of :func:`ctpipe.segment.segment_volume` for this model.

Example:
    >>> import tempfile, torch
    >>> from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
    >>> config = SegmenterConfig(spatial_dims=2, class_map={"liver": 1}, channels=(4, 8),
    ...                          strides=(2,))
    >>> path = save_segmenter(tempfile.mkdtemp() + "/s.pt", build_segmenter(config), config,
    ...                       inference={"roi_size": [64, 64]})
    >>> model, loaded = load_segmenter(path)
    >>> loaded == config, model.checkpoint_record["inference"]["roi_size"]
    (True, [64, 64])
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ctpipe.nets.segmenters import SegmenterConfig

__all__ = [
    "SEGMENTER_FORMAT",
    "load_segmenter",
    "save_segmenter",
    "segmenter_kwargs",
    "tag_segmenter",
]

#: Value of ``record["format"]`` in every ctpipe segmenter checkpoint.
SEGMENTER_FORMAT = "ctpipe.segmenter"


def segmenter_kwargs(config: SegmenterConfig) -> dict[str, Any]:
    """The :class:`SegmenterConfig` as plain data (the record's ``model.kwargs``).

    Example:
        >>> from ctpipe.nets.segmenters import SegmenterConfig
        >>> segmenter_kwargs(SegmenterConfig(class_map={"liver": 1}))["class_map"]
        {'liver': 1}
    """
    from ctpipe.schema import dataclass_to_dict

    return dataclass_to_dict(config)


def tag_segmenter(network: nn.Module, config: SegmenterConfig) -> nn.Module:
    """Give ``network`` its ``config`` attribute (plain kwargs), as ctpipe's denoisers have.

    Checkpoints record ``network.config`` as the model's kwargs.

    Example:
        >>> from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
        >>> config = SegmenterConfig(class_map={"liver": 1}, channels=(4, 8), strides=(2,))
        >>> tag_segmenter(build_segmenter(config), config).config["channels"]
        [4, 8]
    """
    network.config = segmenter_kwargs(config)  # type: ignore[assignment]
    return network


def save_segmenter(
    path: str | PathLike[str],
    network: nn.Module,
    config: SegmenterConfig,
    *,
    inference: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a segmenter checkpoint (weights and record) atomically.

    Args:
        path: The ``.pt`` file.
        network: The network built from ``config``.
        config: Its configuration.
        inference: Preprocessing and sliding-window settings to record.
        metrics: Metrics to record.

    Returns:
        The path written.
    """
    from ctpipe.checkpoints.file import save_checkpoint

    return save_checkpoint(
        path,
        tag_segmenter(network, config),
        model_name=config.architecture,
        metrics=metrics,
        extra={"inference": dict(inference or {})},
        checkpoint_format=SEGMENTER_FORMAT,
    )


def load_segmenter(
    path: str | PathLike[str], map_location: str | torch.device | None = "cpu"
) -> tuple[nn.Module, SegmenterConfig]:
    """Rebuild the segmenter of a checkpoint, in eval mode, with its configuration.

    Args:
        path: A checkpoint written by ``ctpipe train segment`` (``checkpoint_best.pt``,
            ``checkpoint_latest.pt``), by :func:`save_segmenter` or exported weights.
        map_location: Device of the returned model's weights.

    Returns:
        ``(model, config)``; ``model.checkpoint_record`` holds the record (class map,
        ``inference`` settings, metrics, versions).

    Raises:
        InputError: The file is not a ctpipe segmenter checkpoint, or its model cannot be
            rebuilt (the message names the file).
    """
    from ctpipe.checkpoints.file import NETWORK_KEY, RECORD_KEY, read_checkpoint
    from ctpipe.nets.segmenters import SegmenterConfig, build_segmenter
    from ctpipe.schema import parse_dataclass

    checkpoint = read_checkpoint(path, map_location, checkpoint_format=SEGMENTER_FORMAT)
    record = checkpoint[RECORD_KEY]
    kwargs = record.get("model", {}).get("kwargs", {})
    try:
        config = parse_dataclass(SegmenterConfig, kwargs, source=path, error=InputError)
        model = tag_segmenter(build_segmenter(config), config)
        model.load_state_dict(checkpoint[NETWORK_KEY])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"weights do not fit the recorded segmenter: {first}") from None
    if map_location is not None:
        model.to(map_location)
    model.checkpoint_record = record  # type: ignore[attr-defined]
    return model.eval(), config
