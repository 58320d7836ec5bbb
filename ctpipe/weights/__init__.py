"""Small model weights shipped with ctpipe, each described by a model card beside it.

Example:
    >>> weights_path().name
    'redcnn32_aapm_cpu.pt'
    >>> load_default_denoiser().config["filters"]  # doctest: +SKIP
    32
"""

from __future__ import annotations

from pathlib import Path

from ctpipe.errors import InputError

#: The denoiser used when a workflow names none (see its model card, ``.md`` beside it).
DEFAULT_DENOISER = "redcnn32_aapm_cpu.pt"

WEIGHTS_DIR = Path(__file__).resolve().parent


def weights_path(name: str = DEFAULT_DENOISER) -> Path:
    """Path of shipped weights by file name.

    Raises:
        InputError: No such weights ship with this installation (the shipped ones are listed).
    """
    path = WEIGHTS_DIR / name
    if not path.is_file():
        shipped = sorted(p.name for p in WEIGHTS_DIR.glob("*.pt"))
        raise InputError(path, f"no such shipped weights; shipped: {', '.join(shipped) or 'none'}")
    return path


def model_card(name: str = DEFAULT_DENOISER) -> str:
    """The model card (Markdown) of shipped weights."""
    return weights_path(name).with_suffix(".md").read_text(encoding="utf-8")


def load_default_denoiser(map_location: str = "cpu"):
    """Load the default denoiser (RED-CNN, 32 filters, trained on CPU), in eval mode."""
    from ctpipe.engines.checkpoint import load_denoiser

    return load_denoiser(weights_path(), map_location=map_location)
