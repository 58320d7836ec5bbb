"""The workflow files shipped with ctpipe, found by name from a wheel or a source checkout.

The repository's top-level ``workflows/`` folder holds the workflow files users copy and
edit. Building the wheel copies them into the package (``ctpipe/workflow/shipped/``, by
``setup.py``), so ``ctpipe run denoise_segment`` finds the same file from an installed
wheel as from a checkout, whatever the working directory.

Example:
    >>> resolve_workflow("denoise_only").name
    'denoise_only.yaml'
    >>> "denoise_segment" in shipped_names()
    True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGED_DIR", "resolve_workflow", "shipped_dir", "shipped_names"]

#: Where the build puts the shipped workflow files inside the installed package.
PACKAGED_DIR = Path(__file__).resolve().parent / "shipped"
#: The repository's workflow folder, beside the package in a source checkout.
CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "workflows"


def shipped_dir() -> Path:
    """The folder of the shipped workflow files: the package's, else the checkout's."""
    return PACKAGED_DIR if PACKAGED_DIR.is_dir() else CHECKOUT_DIR


def shipped_names() -> list[str]:
    """Names of the shipped workflows (file names without ``.yaml``), sorted."""
    return sorted(path.stem for path in shipped_dir().glob("*.yaml"))


def resolve_workflow(name: str) -> Path:
    """A workflow file: ``name`` itself when it exists, else a shipped workflow by name.

    A name that is neither an existing file nor a shipped workflow comes back as given,
    so that reading it names the missing file.

    Example:
        >>> resolve_workflow("other.yaml").name
        'other.yaml'
    """
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    shipped = shipped_dir() / f"{name}.yaml"
    return shipped if shipped.is_file() else path
