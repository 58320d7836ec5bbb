"""Manifests as YAML files: load and validate, save atomically, read the comment header.

Saved manifests keep each split's ids and each file entry on one line, lists indented
under their key and multi-line text as ``|`` blocks, so a diff of a regenerated manifest
shows exactly the files that changed.

Example:
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "demo.yaml"
    >>> save_manifest(Manifest("demo", splits={"test": ["L192"]}), out, header="A demo.")
    >>> print(out.read_text(), end="")
    # A demo.
    manifest_version: 1
    name: demo
    splits:
      test: [L192]
    >>> load_manifest(out).splits
    {'test': ('L192',)}
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from ctpipe.errors import InputError, ManifestError
from ctpipe.io.atomic import atomic_path
from ctpipe.io.manifest.model import Manifest
from ctpipe.schema import read_yaml

__all__ = ["load_manifest", "read_header", "save_manifest"]


def load_manifest(path: str | PathLike[str]) -> Manifest:
    r"""Read and validate a manifest YAML file.

    Args:
        path: The manifest file.

    Returns:
        The validated manifest.

    Raises:
        ManifestError: When the file cannot be read, is not YAML or is not a valid manifest.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "spleen.yaml"
        >>> _ = path.write_text("manifest_version: 1\nname: spleen\nlabels: {spleen: 1}\n")
        >>> load_manifest(path).labels["spleen"]
        1
    """
    path = Path(path)
    data = read_yaml(path, error=ManifestError, what="manifest")
    return Manifest.from_dict(data, source=path)


def save_manifest(
    manifest: Manifest, path: str | PathLike[str], *, header: str | None = None
) -> None:
    """Write a manifest as YAML atomically (see :func:`ctpipe.io.atomic.atomic_path`).

    Args:
        manifest: The manifest to write.
        path: The destination file; its folder must exist.
        header: Text written first as ``#`` comment lines, e.g. where to download the data.

    Raises:
        InputError: When the destination folder does not exist.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "demo.yaml"
        >>> save_manifest(Manifest("demo"), out, header="A demo.")
        >>> out.read_text().splitlines()[0]
        '# A demo.'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(path.parent, "folder for the manifest does not exist")
    body = yaml.dump(
        _flow_styled(manifest.to_dict()),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=10**6,
    )
    comment = "".join(f"# {line}".rstrip() + "\n" for line in (header or "").splitlines())
    with atomic_path(path) as tmp:
        tmp.write_text(comment + body, encoding="utf-8")


def read_header(path: str | PathLike[str]) -> str:
    """Return the leading ``#`` comment lines of a YAML file, without the ``#``.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "demo.yaml"
        >>> save_manifest(Manifest("demo"), out, header="A demo.")
        >>> read_header(out)
        'A demo.'
    """
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)


# --- YAML style ------------------------------------------------------------------------------


class _FlowList(list):  # type: ignore[type-arg]
    """A list written on one line."""


class _FlowMapping(dict):  # type: ignore[type-arg]
    """A mapping written on one line."""


def _flow_styled(data: dict[str, Any]) -> dict[str, Any]:
    """Mark the split id lists and the file entries of ``Manifest.to_dict`` as one-liners."""
    if "splits" in data:
        data["splits"] = {split: _FlowList(ids) for split, ids in data["splits"].items()}
    if "files" in data:
        data["files"] = [_FlowMapping(entry) for entry in data["files"]]
    return data


class _Dumper(yaml.SafeDumper):
    """Safe dumper that indents lists under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Indent block sequences under their parent key."""
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)
_Dumper.add_representer(
    _FlowMapping, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True)
)
