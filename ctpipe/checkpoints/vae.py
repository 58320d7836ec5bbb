"""VAE checkpoints: the network and the slice grid it was trained on.

A VAE checkpoint is a ctpipe checkpoint (:mod:`ctpipe.checkpoints.file`) of format
:data:`VAE_FORMAT` whose record also holds the slice grid (``record["grid"]``), so a loaded
model scores and generates slices exactly as it was trained.

Example:
    >>> import tempfile
    >>> from ctpipe.checkpoints.file import save_checkpoint
    >>> from ctpipe.nets.vae import VAE
    >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/vae.pt", vae, model_name="vae",
    ...                        checkpoint_format=VAE_FORMAT)
    >>> loaded = load_vae(path)
    >>> loaded.config == vae.config, loaded.training
    (True, False)
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ctpipe.nets.vae import VAE

__all__ = ["VAE_FORMAT", "load_vae"]

#: ``record["format"]`` of VAE checkpoints.
VAE_FORMAT = "ctpipe.vae"


def load_vae(path: str | PathLike[str], map_location: str | torch.device | None = "cpu") -> VAE:
    """Rebuild the VAE of a ctpipe checkpoint (format :data:`VAE_FORMAT`), in eval mode.

    Args:
        path: A checkpoint written by ``ctpipe train vae`` or exported from one.
        map_location: Device of the returned model's weights.

    Returns:
        The model in eval mode; ``model.checkpoint_record`` holds the record (model,
        config, the slice grid under ``"grid"``, metrics, versions).

    Raises:
        InputError: The file is not a ctpipe VAE checkpoint or its weights do not fit.

    Example:
        >>> vae = load_vae("ctpipe/weights/vae_ct128_cpu.pt")  # doctest: +SKIP
        >>> vae.checkpoint_record["grid"]["pixel_mm"]  # doctest: +SKIP
        3.0
    """
    from ctpipe.checkpoints.file import NETWORK_KEY, RECORD_KEY, read_checkpoint
    from ctpipe.errors import InputError
    from ctpipe.nets.vae import VAE

    checkpoint = read_checkpoint(path, map_location, checkpoint_format=VAE_FORMAT)
    record = checkpoint[RECORD_KEY]
    kwargs = dict(record.get("model", {}).get("kwargs", {}))
    try:
        model = VAE(**kwargs)
        model.load_state_dict(checkpoint[NETWORK_KEY])
    except (TypeError, ValueError, RuntimeError) as err:
        problem = str(err).strip().splitlines()[0]
        raise InputError(path, f"cannot rebuild the VAE {kwargs}: {problem}") from None
    if map_location is not None:
        model.to(map_location)
    model.checkpoint_record = record  # type: ignore[assignment]
    return model.eval()
