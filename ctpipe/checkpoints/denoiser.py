"""Denoiser checkpoints: rebuild the network a ctpipe checkpoint describes.

The record's ``model`` names a network of :data:`ctpipe.nets.DENOISERS` and the keyword
arguments that rebuild it; the weights are checked against their sha256 on reading
(:func:`ctpipe.checkpoints.file.read_checkpoint`).

Example:
    >>> import tempfile, torch
    >>> from ctpipe.checkpoints.file import save_checkpoint
    >>> from ctpipe.nets import build_denoiser
    >>> model = build_denoiser("redcnn", filters=4)
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/tiny.pt", model, model_name="redcnn")
    >>> loaded = load_denoiser(path)
    >>> x = torch.rand(1, 1, 32, 32)
    >>> bool(torch.equal(loaded(x), model.eval()(x))), loaded.training
    (True, False)
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

from ctpipe.checkpoints.file import NETWORK_KEY, RECORD_KEY, first_line, read_checkpoint
from ctpipe.errors import InputError

if TYPE_CHECKING:
    import torch

    from ctpipe.nets.base import Denoiser

__all__ = ["load_denoiser"]


def load_denoiser(
    path: str | PathLike[str], map_location: str | torch.device | None = "cpu"
) -> Denoiser:
    """Rebuild the denoiser stored in a ctpipe checkpoint, in eval mode.

    Args:
        path: A checkpoint written by training (``checkpoint_best.pt``,
            ``checkpoint_latest.pt``) or by :func:`~ctpipe.checkpoints.file.save_checkpoint`.
        map_location: Device of the returned model's weights.

    Returns:
        The model with the checkpoint's weights, in eval mode. Its ``checkpoint_record``
        attribute holds the checkpoint's record (model, config, metrics, versions).

    Raises:
        InputError: The file is not a ctpipe checkpoint, or its model cannot be rebuilt
            (unknown name, weights of another shape); the message names the file.

    Example:
        >>> model = load_denoiser("runs/denoise_redcnn_cpu/checkpoint_best.pt")  # doctest: +SKIP
        >>> model.checkpoint_record["metrics"]  # doctest: +SKIP
        {'psnr': 41.2, 'ssim': 0.95}
    """
    from ctpipe.nets import build_denoiser

    checkpoint = read_checkpoint(path, map_location)
    record = checkpoint[RECORD_KEY]
    model_info = record.get("model", {})
    name, kwargs = model_info.get("name"), model_info.get("kwargs", {})
    try:
        model = build_denoiser(name, **kwargs)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"cannot rebuild model {name!r} with {kwargs}: {err}") from None
    try:
        model.load_state_dict(checkpoint[NETWORK_KEY])
    except RuntimeError as err:
        raise InputError(
            path, f"weights do not fit model {name!r} {kwargs}: {first_line(err)}"
        ) from None
    if map_location is not None:
        model.to(map_location)
    model.checkpoint_record = record  # type: ignore[attr-defined]
    return model.eval()
