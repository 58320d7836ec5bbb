"""The library versions recorded with every result: run records, training logs, checkpoints.

Example:
    >>> sorted(versions())
    ['ctpipe', 'monai', 'torch']
    >>> package_versions("no-such-package-xyz")
    {}
"""

from __future__ import annotations

__all__ = ["package_versions", "versions"]


def versions() -> dict[str, str]:
    """Versions of ctpipe, torch and MONAI (plain strings, as checkpoints store them).

    MONAI is ``"not installed"`` where it is missing (a GPU machine that trains a network
    with torch alone, ``benchmarks/gpu_redcnn96.py``).
    """
    import torch

    from ctpipe import __version__

    try:
        import monai

        monai_version = str(monai.__version__)
    except ImportError:
        monai_version = "not installed"
    return {
        "ctpipe": str(__version__),
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only loading refuses
        "monai": monai_version,
    }


def package_versions(*packages: str) -> dict[str, str]:
    """The installed version of each named distribution; those not installed are left out."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
