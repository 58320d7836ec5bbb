"""Segmenters: MONAI ``UNet`` or ``SegResNet`` (2D or 3D) built from a typed config.

:class:`SegmenterConfig` is the schema (loadable from YAML with
:func:`ctpipe.schema.parse_dataclass`); :func:`build_segmenter` builds the network. The
class map names each organ's label value; background is label 0 and is implicit. Label
values must be exactly ``1 .. N`` (any order of names), so output channel ``k`` scores
label ``k`` with no remapping, and the network has ``N + 1`` output channels.

Example:
    >>> import torch
    >>> config = SegmenterConfig(spatial_dims=2, class_map={"liver": 1, "spleen": 2},
    ...                          channels=(4, 8), strides=(2,), num_res_units=0)
    >>> config.out_channels, config.class_names
    (3, ('background', 'liver', 'spleen'))
    >>> build_segmenter(config)(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 3, 16, 16])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from torch import nn

from ctpipe.phantom import LABEL_NAMES

__all__ = ["ABDOMINAL_CLASS_MAP", "SegmenterConfig", "build_segmenter"]

#: Default class map: the organs of :data:`ctpipe.phantom.LABEL_NAMES`, same label values.
ABDOMINAL_CLASS_MAP: Mapping[str, int] = MappingProxyType(dict(LABEL_NAMES))


def _positive_ints(name: str, values: tuple[int, ...], min_length: int) -> None:
    if len(values) < min_length or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values
    ):
        raise ValueError(
            f"{name} must be at least {min_length} positive integers, got {list(values)!r}"
        )


@dataclass(frozen=True)
class SegmenterConfig:
    """What segmenter to build; checked on construction.

    Args:
        architecture: ``"unet"`` (MONAI ``UNet``) or ``"segresnet"`` (MONAI ``SegResNet``).
        spatial_dims: 2 (slices) or 3 (volumes).
        class_map: Organ name -> label value; values exactly ``1 .. N``; background (0) is
            implicit and the name ``"background"`` is reserved.
        in_channels: Input channels (1 for CT).
        channels: UNet feature maps per level (at least 2 levels).
        strides: UNet down-sampling per level, ``len(channels) - 1`` of them.
        num_res_units: UNet residual units per block (0: plain convolutions).
        init_filters: SegResNet feature maps of the first level (a multiple of 8, for its
            group normalisation).
        blocks_down: SegResNet residual blocks per down level.
        dropout: Dropout probability, in ``[0, 1)``.

    Raises:
        ValueError: Any rule above broken; the message names the field, rule and value.

    Example:
        >>> SegmenterConfig(class_map={"liver": 2})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: class_map label values must be exactly 1 .. 1 (...), got [2]
    """

    architecture: Literal["unet", "segresnet"] = "unet"
    spatial_dims: Literal[2, 3] = 3
    class_map: Mapping[str, int] = field(default_factory=lambda: dict(ABDOMINAL_CLASS_MAP))
    in_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 2
    init_filters: int = 16
    blocks_down: tuple[int, ...] = (1, 2, 2, 4)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.architecture not in ("unet", "segresnet"):
            raise ValueError(
                f"architecture must be 'unet' or 'segresnet', got {self.architecture!r}"
            )
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        if not isinstance(self.class_map, Mapping) or not self.class_map:
            raise ValueError(f"class_map must be a non-empty mapping, got {self.class_map!r}")
        for name, value in self.class_map.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"class_map names must be non-empty strings, got {name!r}")
            if name == "background":
                raise ValueError("class_map must not name 'background': label 0 is implicit")
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"class_map[{name!r}] must be an integer label value, got {value!r}"
                )
        values = sorted(self.class_map.values())
        if values != list(range(1, len(values) + 1)):
            raise ValueError(
                f"class_map label values must be exactly 1 .. {len(values)} "
                f"(background 0 is implicit), got {values}"
            )
        object.__setattr__(self, "class_map", MappingProxyType(dict(self.class_map)))
        _positive_ints("in_channels", (self.in_channels,), 1)
        _positive_ints("channels", self.channels, 2)
        _positive_ints("strides", self.strides, 1)
        if len(self.strides) != len(self.channels) - 1:
            raise ValueError(
                f"strides must have len(channels) - 1 = {len(self.channels) - 1} items, "
                f"got {list(self.strides)!r}"
            )
        if isinstance(self.num_res_units, bool) or self.num_res_units < 0:
            raise ValueError(f"num_res_units must be >= 0, got {self.num_res_units!r}")
        _positive_ints("init_filters", (self.init_filters,), 1)
        if self.init_filters % 8:
            raise ValueError(f"init_filters must be a multiple of 8, got {self.init_filters}")
        _positive_ints("blocks_down", self.blocks_down, 1)
        if not (math.isfinite(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def out_channels(self) -> int:
        """Output channels: one per class plus the background."""
        return len(self.class_map) + 1

    @property
    def class_names(self) -> tuple[str, ...]:
        """Name of each output channel, ``"background"`` first, in label order."""
        by_value = sorted(self.class_map.items(), key=lambda item: item[1])
        return ("background", *(name for name, _ in by_value))

    @property
    def size_divisor(self) -> int:
        """Each spatial input size must be a multiple of this for the output to match."""
        if self.architecture == "unet":
            return math.prod(self.strides)
        return 2 ** (len(self.blocks_down) - 1)


def build_segmenter(config: SegmenterConfig) -> nn.Module:
    """Build the MONAI network ``config`` describes, mapping ``(B, in, *S)`` to logits.

    Args:
        config: The checked segmenter configuration.

    Returns:
        A MONAI ``UNet`` or ``SegResNet`` with ``config.out_channels`` output channels.

    Example:
        >>> import torch
        >>> config = SegmenterConfig("segresnet", 3, {"liver": 1}, init_filters=8,
        ...                          blocks_down=(1, 1))
        >>> build_segmenter(config)(torch.zeros(1, 1, 8, 8, 8)).shape
        torch.Size([1, 2, 8, 8, 8])
    """
    if config.architecture == "unet":
        from monai.networks.nets import UNet

        return UNet(
            spatial_dims=config.spatial_dims,
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.num_res_units,
            dropout=config.dropout,
        )
    from monai.networks.nets import SegResNet

    return SegResNet(
        spatial_dims=config.spatial_dims,
        init_filters=config.init_filters,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        dropout_prob=config.dropout or None,
        blocks_down=config.blocks_down,
        blocks_up=(1,) * (len(config.blocks_down) - 1),
    )
