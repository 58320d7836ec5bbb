"""Small model weights shipped with ctpipe, each described by a model card beside it.

Example:
    >>> weights_path().name
    'redcnn32_kernel_matched_cpu.pt'
    >>> sorted(load_default_denoiser().networks)  # doctest: +SKIP
    ['sharp', 'smooth']
"""

from __future__ import annotations

from pathlib import Path

from ctpipe.errors import InputError

#: The denoiser used when a workflow names none (see its model card, ``.md`` beside it).
DEFAULT_DENOISER = "redcnn32_kernel_matched_cpu.pt"
#: The segmenter used when a workflow or ``ctpipe segment`` names none (model card beside it).
DEFAULT_SEGMENTER = "unet2d_totalseg_cpu.pt"
#: The VAE of anomaly scoring and generation (``ctpipe anomaly``, ``ctpipe vae``; model card
#: beside it).
DEFAULT_VAE = "vae_ct128_cpu.pt"
#: The DCGAN of ``ctpipe inpaint`` (generator and discriminator; model card beside it).
DEFAULT_GAN = "dcgan64_ct_cpu.pt"

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
    """Load the default denoiser, in eval mode.

    It is kernel-matched (:class:`ctpipe.nets.kernel_matched.KernelMatchedDenoiser`): a
    RED-CNN of 32 filters for sharp kernels (also run when the kernel is unknown) and one
    for smooth kernels, both trained on CPU (model card beside the weights).
    """
    from ctpipe.checkpoints.denoiser import load_denoiser

    return load_denoiser(weights_path(), map_location=map_location)


def load_default_segmenter(map_location: str = "cpu"):
    """Load the default segmenter (2-D MONAI UNet, trained on CPU) and its configuration.

    Returns:
        ``(model, config)``: the network in eval mode (its ``checkpoint_record`` holds the
        class map and the ``inference`` settings for :func:`ctpipe.segment.segment_volume`)
        and its :class:`~ctpipe.nets.segmenters.SegmenterConfig`.

    Example:
        >>> model, config = load_default_segmenter()  # doctest: +SKIP
        >>> config.class_names[1], model.checkpoint_record["inference"]["axcodes"]  # doctest: +SKIP
        ('liver', 'LPS')
    """
    from ctpipe.checkpoints.segmenter import load_segmenter

    return load_segmenter(weights_path(DEFAULT_SEGMENTER), map_location=map_location)


def load_default_vae(map_location: str = "cpu"):
    """Load the default VAE (128 x 128 slices of 3 mm pixels, trained on CPU), in eval mode.

    Its ``checkpoint_record`` holds the slice grid and the training configuration that
    :func:`ctpipe.anomaly.anomaly_volume` and :mod:`ctpipe.vae_generate` use.

    Example:
        >>> vae = load_default_vae()  # doctest: +SKIP
        >>> vae.checkpoint_record["grid"]["size"]  # doctest: +SKIP
        [128, 128]
    """
    from ctpipe.checkpoints.vae import load_vae

    return load_vae(weights_path(DEFAULT_VAE), map_location=map_location)


def load_default_gan(map_location: str = "cpu"):
    """Load the default DCGAN (64 x 64 CT patches, trained on CPU) for inpainting.

    Returns:
        :class:`~ctpipe.checkpoints.gan.GanModels`: generator and discriminator in
        eval mode and the HU window they work in, for :func:`ctpipe.inpaint.inpaint_volume`.

    Example:
        >>> gan = load_default_gan()  # doctest: +SKIP
        >>> gan.window, gan.generator.image_size  # doctest: +SKIP
        ((-1024.0, 1024.0), 64)
    """
    from ctpipe.checkpoints.gan import load_gan

    return load_gan(weights_path(DEFAULT_GAN), map_location=map_location)
