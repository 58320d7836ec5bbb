"""A local MONAI bundle folder, checked: configs, weights and the class names of its labels.

:func:`find_bundle` checks that a folder is a segmentation bundle in the MONAI Model
Zoo's layout and returns a :class:`SegmentationBundle`::

    spleen_ct_segmentation/
        configs/metadata.json        network_data_format.outputs.pred: format, channel_def
        configs/inference.json       (or inference.yaml): network_def, preprocessing,
                                     inferer, postprocessing
        models/model.pt              state dict for network_def (or models/model.ts,
                                     a TorchScript module)

Label value ``v`` is the class that ``channel_def`` names for channel ``v`` (the arg-max
of the network's output channels), 0 the background. ctpipe never downloads a bundle:
a name that is not a local folder gets one line saying how to fetch it with
``python -m monai.bundle download`` on a machine with internet. Every other problem
(a missing file, unreadable JSON, a bundle that does not segment, a ``channel_def`` that
does not name every channel) is a :class:`BundleError` naming the file and the problem.

Example:
    >>> find_bundle("spleen_ct_segmentation")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ctpipe.bundle.layout.BundleError: spleen_ct_segmentation: no such bundle folder; ctpipe \
never downloads bundles: on a machine with internet run `python -m monai.bundle download \
--name spleen_ct_segmentation --bundle_dir bundles`, copy bundles/spleen_ct_segmentation \
here and give its folder
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ctpipe.errors import InputError

__all__ = [
    "CONFIG_NAMES",
    "MODEL_NAMES",
    "BundleError",
    "SegmentationBundle",
    "find_bundle",
]

#: Inference configs looked for in ``configs/``, in this order.
CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")
#: Weights looked for in ``models/``, in this order: a state dict, a TorchScript module.
MODEL_NAMES = ("model.pt", "model.ts")


class BundleError(InputError):
    """A bundle folder cannot be used (the message names the file and the problem)."""


@dataclass(frozen=True)
class SegmentationBundle:
    """A checked segmentation bundle folder.

    Attributes:
        root: The bundle folder.
        config_file: Its inference config (``configs/inference.json`` or ``.yaml``).
        metadata_file: ``configs/metadata.json``.
        model_file: The weights used: ``models/model.pt`` or ``models/model.ts``.
        metadata: The parsed ``metadata.json``.
        class_names: Class name of each label value (index 0 is the background).
        output_key: The output of ``network_data_format`` the labels come from.
    """

    root: Path
    config_file: Path
    metadata_file: Path
    model_file: Path
    metadata: Mapping[str, Any]
    class_names: tuple[str, ...]
    output_key: str = "pred"

    @property
    def name(self) -> str:
        """The bundle's name (``metadata.json`` ``name``, else its folder's name)."""
        return str(self.metadata.get("name") or self.root.name)

    @property
    def version(self) -> str:
        """The bundle's version from ``metadata.json`` (empty when absent)."""
        return str(self.metadata.get("version", ""))

    @property
    def is_torchscript(self) -> bool:
        """True when the weights are a TorchScript module (``model.ts``)."""
        return self.model_file.suffix == ".ts"

    @property
    def class_map(self) -> dict[str, int]:
        """Class name -> label value, background excluded.

        Example:
            >>> bundle = SegmentationBundle(Path("b"), Path("c"), Path("m"), Path("w.pt"), {},
            ...                             ("background", "spleen"))
            >>> bundle.class_map
            {'spleen': 1}
        """
        return {name: value for value, name in enumerate(self.class_names) if value > 0}

    def describe(self) -> dict[str, Any]:
        """Name, version, folder and files, for run records."""
        return {
            "name": self.name,
            "version": self.version,
            "folder": str(self.root),
            "config": str(self.config_file.relative_to(self.root)),
            "weights": str(self.model_file.relative_to(self.root)),
        }


def find_bundle(path: str | PathLike[str], *, model: str | None = None) -> SegmentationBundle:
    """Check a bundle folder and read its metadata.

    Args:
        path: The bundle folder (the one holding ``configs/`` and ``models/``).
        model: The weights file in ``models/`` to use (``model.pt`` or ``model.ts``);
            ``None``: ``model.pt`` when present, else ``model.ts``.

    Returns:
        The :class:`SegmentationBundle`.

    Raises:
        BundleError: The folder is missing (a bare name gets the download command), or
            misses a file, or is not a segmentation bundle, or its ``channel_def`` does
            not name every output channel.
    """
    root = Path(path)
    if not root.exists():
        raise BundleError(root, _missing_folder_hint(str(path)))
    if not root.is_dir():
        raise BundleError(root, f"not a bundle folder ({_LAYOUT})")
    root = root.resolve()
    metadata_file = root / "configs" / "metadata.json"
    if not metadata_file.is_file():
        raise BundleError(root, f"not a MONAI bundle: configs/metadata.json is missing ({_LAYOUT})")
    metadata = _read_json(metadata_file)
    config_file = _first_file(root / "configs", CONFIG_NAMES, root, "inference config")
    model_file = _model_file(root, model)
    output_key, class_names = _class_names(metadata, metadata_file)
    return SegmentationBundle(
        root=root,
        config_file=config_file,
        metadata_file=metadata_file,
        model_file=model_file,
        metadata=MappingProxyType(dict(metadata)),
        class_names=class_names,
        output_key=output_key,
    )


_LAYOUT = "expected configs/metadata.json, configs/inference.json and models/model.pt or model.ts"


def _missing_folder_hint(given: str) -> str:
    if "/" in given or "\\" in given or given.startswith("."):
        return f"no such bundle folder ({_LAYOUT})"
    return (
        "no such bundle folder; ctpipe never downloads bundles: on a machine with internet run "
        f"`python -m monai.bundle download --name {given} --bundle_dir bundles`, copy "
        f"bundles/{given} here and give its folder"
    )


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise BundleError(path, f"cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise BundleError(path, f"must hold a JSON object, got {type(data).__name__}")
    return data


def _first_file(folder: Path, names: tuple[str, ...], root: Path, what: str) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    listed = " or ".join(f"configs/{n}" for n in names)
    raise BundleError(root, f"no {what}: {listed} is missing")


def _model_file(root: Path, model: str | None) -> Path:
    models = root / "models"
    if model is not None:
        if model not in MODEL_NAMES:
            raise BundleError(root, f"model must be one of {', '.join(MODEL_NAMES)}, got {model!r}")
        if not (models / model).is_file():
            found = [n for n in MODEL_NAMES if (models / n).is_file()]
            raise BundleError(
                root, f"models/{model} is missing (found: {', '.join(found) or 'no weights'})"
            )
        return models / model
    for name in MODEL_NAMES:
        if (models / name).is_file():
            return models / name
    raise BundleError(
        root,
        "no weights: models/model.pt or models/model.ts is missing (download the bundle "
        "with its weights, e.g. `python -m monai.bundle download`)",
    )


def _class_names(metadata: Mapping[str, Any], path: Path) -> tuple[str, tuple[str, ...]]:
    """The output key and its class names by channel, after checking the format."""
    outputs = (metadata.get("network_data_format") or {}).get("outputs") or {}
    if not isinstance(outputs, dict) or not outputs:
        raise BundleError(path, "has no network_data_format.outputs: not a segmentation bundle")
    key = "pred" if "pred" in outputs else next(iter(outputs))
    output = outputs[key] if isinstance(outputs[key], dict) else {}
    kind = output.get("format")
    if kind != "segmentation":
        raise BundleError(
            path,
            f"not a segmentation bundle: network_data_format.outputs.{key}.format is "
            f"{kind!r}, ctpipe segment needs 'segmentation'",
        )
    channel_def = output.get("channel_def")
    if not isinstance(channel_def, dict) or not channel_def:
        raise BundleError(
            path, f"network_data_format.outputs.{key}.channel_def is missing: no class names"
        )
    try:
        channels = {int(k): str(v).strip() for k, v in channel_def.items()}
    except (TypeError, ValueError):
        raise BundleError(
            path, f"outputs.{key}.channel_def keys must be channel numbers, got {list(channel_def)}"
        ) from None
    count = output.get("num_channels", len(channels))
    if sorted(channels) != list(range(len(channels))) or count != len(channels):
        raise BundleError(
            path,
            f"outputs.{key}.channel_def must name every channel 0 .. {int(count) - 1} once "
            f"(num_channels {count}), got channels {sorted(channels)}: ctpipe cannot map the "
            "labels to classes",
        )
    if not all(channels.values()) or len(set(channels.values())) != len(channels):
        raise BundleError(
            path, f"outputs.{key}.channel_def names must be distinct and not empty, got {channels}"
        )
    return key, tuple(channels[c] for c in range(len(channels)))
