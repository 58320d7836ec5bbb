"""Training with MONAI engines: typed configs, datasets, trainers, checkpoints.

* :mod:`ctpipe.training.denoise.config`: :class:`DenoiseTrainConfig`, loaded from YAML by
  :func:`~ctpipe.training.denoise.config.load_train_config` (unknown keys and wrong types refused
  with the key path).
* :mod:`ctpipe.training.denoise.data`: paired AAPM slices (and simulated pairs) as MONAI
  ``CacheDataset`` objects with patch sampling and augmentation.
* :mod:`ctpipe.training.denoise.trainer`: :func:`~ctpipe.training.denoise.trainer.
  build_denoise_trainer` (a MONAI ``SupervisedTrainer`` and ``SupervisedEvaluator``) and
  :func:`~ctpipe.training.denoise.trainer.train_denoiser`, the entry point (single process or
  ``torchrun``).
* :mod:`ctpipe.checkpoints.file`: self-describing checkpoints and
  :func:`~ctpipe.checkpoints.denoiser.load_denoiser`.
* :mod:`ctpipe.training.segment.config`, :mod:`ctpipe.training.segment.data`,
  :mod:`ctpipe.training.segment.trainer`, :mod:`ctpipe.checkpoints.segmenter`: segmenter
  training (``SegmentTrainConfig``, labelled cases and label remapping, the trainer with
  per-class Dice and HD95, and :func:`~ctpipe.checkpoints.segmenter.load_segmenter`).
* :mod:`ctpipe.training.vae.config`, :mod:`ctpipe.training.vae.data`,
  :mod:`ctpipe.training.vae.trainer`: VAE training (``VAETrainConfig`` with held-out slices refused,
  slices on a fixed grid, the trainer with KL warm-up and per-epoch sample images).
* :mod:`ctpipe.training.gan.config`, :mod:`ctpipe.training.gan.data`,
  :mod:`ctpipe.training.gan.trainer`, :mod:`ctpipe.training.gan.history`,
  :mod:`ctpipe.checkpoints.gan`: DCGAN training with MONAI's ``GanTrainer`` (k
  discriminator steps, non-saturating loss, instance noise, sample grids) and checkpoints
  holding both networks and the HU window.
* :mod:`ctpipe.training.common`: seeding, the non-finite-loss check, MONAI stats logging
  and timing, shared by every trainer.
* :mod:`ctpipe.training.history`, :mod:`ctpipe.training.schedule`,
  :mod:`ctpipe.training.distributed`: the loss log and curve, learning-rate schedules and
  the ``torchrun`` process group.

Nothing is imported here, so ``python -m ctpipe.training.denoise.trainer`` runs cleanly and
importing the package does not load torch.

Example:
    >>> from ctpipe.training.denoise.config import load_train_config  # doctest: +SKIP
    >>> from ctpipe.training.denoise.trainer import train_denoiser  # doctest: +SKIP
    >>> config = load_train_config("workflows/training/denoise_redcnn_cpu.yaml")  # doctest: +SKIP
    >>> result = train_denoiser(config)  # doctest: +SKIP
"""
