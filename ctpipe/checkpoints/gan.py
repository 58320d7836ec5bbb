"""DCGAN checkpoints: generator and discriminator in one self-describing file.

The file follows :mod:`ctpipe.checkpoints.file` with format ``ctpipe.gan``:

* ``"network"``: the generator's ``state_dict`` (checked against the record's
  ``network_sha256`` by :func:`~ctpipe.checkpoints.file.read_checkpoint`);
* ``"discriminator"``: the discriminator's ``state_dict``, checked against
  ``record["discriminator"]["sha256"]``;
* ``"ctpipe"``: the record: model name ``dcgan`` and the generator's kwargs, the
  discriminator's kwargs, the HU ``window`` the images were mapped from, the training
  config, epoch, iteration and versions;
* for resuming (training checkpoints only): both optimizers, the trainer and the history.

:func:`load_gan` rebuilds both networks in eval mode (batch normalisation uses its running
statistics, so each image of a batch is treated independently) and returns them with the
window; each network also carries the record as ``checkpoint_record`` (its ``"window"``
is what :func:`ctpipe.inpaint.volume.inpaint_volume` uses by default).
:func:`export_gan_weights` keeps only what inference needs.

Example:
    >>> import tempfile
    >>> from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    >>> g, d = DCGANGenerator(latent_size=8, features=4), DCGANDiscriminator(features=4)
    >>> path = save_gan(tempfile.mkdtemp() + "/gan.pt", g, d, window=(-1024.0, 1024.0))
    >>> models = load_gan(path)
    >>> models.window, models.generator.latent_size, models.generator.training
    ((-1024.0, 1024.0), 8, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipe.checkpoints.file import (
    NETWORK_KEY,
    RECORD_KEY,
    checkpoint_record,
    read_checkpoint,
    state_sha256,
)
from ctpipe.errors import InputError
from ctpipe.io.atomic import atomic_path

if TYPE_CHECKING:
    import torch

    from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = [
    "DISCRIMINATOR_KEY",
    "GAN_FORMAT",
    "MODEL_NAME",
    "GanModels",
    "discriminator_entry",
    "export_gan_weights",
    "load_gan",
    "read_gan_checkpoint",
    "save_gan",
]

#: ``record["format"]`` of DCGAN checkpoints.
GAN_FORMAT = "ctpipe.gan"
#: Key of the discriminator's state in the checkpoint dict.
DISCRIMINATOR_KEY = "discriminator"
#: Model name in the record.
MODEL_NAME = "dcgan"


@dataclass(frozen=True)
class GanModels:
    """A loaded DCGAN: both networks (eval mode), the HU window and the record.

    Args:
        generator: The generator.
        discriminator: The discriminator.
        window: HU ``(low, high)`` mapped to the generator's [-1, 1].
        record: The checkpoint's record (config, epoch, versions, sha256 digests).
        path: The file it was read from.
    """

    generator: DCGANGenerator
    discriminator: DCGANDiscriminator
    window: tuple[float, float]
    record: dict[str, Any] = field(repr=False)
    path: Path | None = None

    @property
    def sha256(self) -> str:
        """Digest of the generator's weights (identifies the model in run records)."""
        return str(self.record.get("network_sha256", ""))


def discriminator_entry(discriminator: torch.nn.Module) -> dict[str, Any]:
    """The record's ``discriminator`` entry: its name, kwargs and weights' sha256."""
    return {
        "name": "dcgan_discriminator",
        "kwargs": dict(discriminator.config),
        "sha256": state_sha256(discriminator.state_dict()),
    }


def save_gan(
    path: str | PathLike[str],
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    *,
    window: tuple[float, float],
    config: Mapping[str, Any] | None = None,
    epoch: int = 0,
    iteration: int = 0,
) -> Path:
    """Write both networks and their record atomically.

    Returns:
        The path written.
    """
    import torch

    record = checkpoint_record(
        generator,
        model_name=MODEL_NAME,
        config=config,
        epoch=epoch,
        iteration=iteration,
        extra={"window": [float(w) for w in window]},
        checkpoint_format=GAN_FORMAT,
    )
    record[DISCRIMINATOR_KEY] = discriminator_entry(discriminator)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(
            {
                NETWORK_KEY: generator.state_dict(),
                DISCRIMINATOR_KEY: discriminator.state_dict(),
                RECORD_KEY: record,
            },
            tmp,
        )
    return path


def read_gan_checkpoint(path: str | PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a GAN checkpoint dict and check both networks' sha256 digests.

    Raises:
        InputError: Not a ctpipe GAN checkpoint, or a network state does not match its
            recorded digest (the message names the file).
    """
    checkpoint = read_checkpoint(path, map_location, checkpoint_format=GAN_FORMAT)
    entry = checkpoint[RECORD_KEY].get(DISCRIMINATOR_KEY)
    if DISCRIMINATOR_KEY not in checkpoint or not isinstance(entry, dict):
        raise InputError(path, "GAN checkpoint has no discriminator state or record")
    if state_sha256(checkpoint[DISCRIMINATOR_KEY]) != entry.get("sha256"):
        raise InputError(
            path,
            "discriminator state does not match the sha256 recorded in the checkpoint: the "
            "file was changed or damaged",
        )
    return checkpoint


def load_gan(path: str | PathLike[str], map_location: str | torch.device = "cpu") -> GanModels:
    """Rebuild the generator and discriminator of a DCGAN checkpoint, in eval mode.

    Args:
        path: A checkpoint of ``ctpipe train gan`` or :func:`save_gan`, or exported weights.
        map_location: Device of the returned networks.

    Returns:
        Both networks, the HU window and the record.

    Raises:
        InputError: The file is not a ctpipe GAN checkpoint, is damaged, or its networks
            cannot be rebuilt (the message names the file).
    """
    from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    checkpoint = read_gan_checkpoint(path, map_location)
    record = checkpoint[RECORD_KEY]
    window = record.get("window")
    if not (isinstance(window, list | tuple) and len(window) == 2 and window[1] > window[0]):
        raise InputError(path, f"GAN checkpoint record has no valid HU window: {window!r}")
    networks = []
    for cls, state, kwargs in (
        (DCGANGenerator, checkpoint[NETWORK_KEY], record.get("model", {}).get("kwargs", {})),
        (
            DCGANDiscriminator,
            checkpoint[DISCRIMINATOR_KEY],
            record[DISCRIMINATOR_KEY].get("kwargs", {}),
        ),
    ):
        try:
            network = cls(**kwargs)
            network.load_state_dict(state)
        except (TypeError, ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(
                path, f"cannot rebuild {cls.__name__} with {kwargs}: {first}"
            ) from None
        networks.append(network.to(map_location).eval())
    generator, discriminator = networks
    for network in networks:  # as load_denoiser does: the record travels with the network
        network.checkpoint_record = dict(record)  # type: ignore[attr-defined]
    if generator.image_size != discriminator.image_size:
        raise InputError(
            path,
            f"generator images are {generator.image_size} pixels but the discriminator scores "
            f"{discriminator.image_size}",
        )
    return GanModels(
        generator,  # type: ignore[arg-type]
        discriminator,  # type: ignore[arg-type]
        (float(window[0]), float(window[1])),
        dict(record),
        Path(path),
    )


def export_gan_weights(
    checkpoint: str | PathLike[str], path: str | PathLike[str], *, note: str = ""
) -> Path:
    """Write only the two networks and the record (no optimizer or trainer state).

    Args:
        checkpoint: A training checkpoint.
        path: The ``.pt`` file to write (atomically).
        note: Free text stored in the record under ``"note"``.

    Returns:
        The path written.
    """
    import torch

    source = read_gan_checkpoint(checkpoint)
    record = dict(source[RECORD_KEY])
    if note:
        record["note"] = note
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(
            {
                NETWORK_KEY: source[NETWORK_KEY],
                DISCRIMINATOR_KEY: source[DISCRIMINATOR_KEY],
                RECORD_KEY: record,
            },
            tmp,
        )
    return path
