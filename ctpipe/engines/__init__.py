"""Training with MONAI engines: typed configs, datasets, trainers, checkpoints.

* :mod:`ctpipe.engines.config`: :class:`DenoiseTrainConfig`, loaded from YAML by
  :func:`~ctpipe.engines.config.load_train_config` (unknown keys and wrong types refused
  with the key path).
* :mod:`ctpipe.engines.data`: paired AAPM slices (and simulated pairs) as MONAI
  ``CacheDataset`` objects with patch sampling and augmentation.
* :mod:`ctpipe.engines.denoise`: :func:`~ctpipe.engines.denoise.build_denoise_trainer` (a
  MONAI ``SupervisedTrainer`` and ``SupervisedEvaluator``) and
  :func:`~ctpipe.engines.denoise.train_denoiser`, the entry point (single process or
  ``torchrun``).
* :mod:`ctpipe.engines.checkpoint`: self-describing checkpoints and
  :func:`~ctpipe.engines.checkpoint.load_denoiser`.
* :mod:`ctpipe.engines.segment_config`, :mod:`ctpipe.engines.segment_data`,
  :mod:`ctpipe.engines.segment`, :mod:`ctpipe.engines.segment_checkpoint`: segmenter
  training (``SegmentTrainConfig``, labelled cases and label remapping, the trainer with
  per-class Dice and HD95, and :func:`~ctpipe.engines.segment_checkpoint.load_segmenter`).
* :mod:`ctpipe.engines.vae_config`, :mod:`ctpipe.engines.vae_data`,
  :mod:`ctpipe.engines.vae`: VAE training (``VAETrainConfig`` with held-out slices refused,
  slices on a fixed grid, the trainer with KL warm-up and per-epoch sample images).
* :mod:`ctpipe.engines.gan_config`, :mod:`ctpipe.engines.gan_data`,
  :mod:`ctpipe.engines.gan`, :mod:`ctpipe.engines.gan_history`,
  :mod:`ctpipe.engines.gan_checkpoint`: DCGAN training with MONAI's ``GanTrainer`` (k
  discriminator steps, non-saturating loss, instance noise, sample grids) and checkpoints
  holding both networks and the HU window.
* :mod:`ctpipe.engines.common`: seeding, the non-finite-loss check, MONAI stats logging
  and timing, shared by every trainer.
* :mod:`ctpipe.engines.history`, :mod:`ctpipe.engines.schedule`,
  :mod:`ctpipe.engines.distributed`: the loss log and curve, learning-rate schedules and
  the ``torchrun`` process group.

Nothing is imported here, so ``python -m ctpipe.engines.denoise`` runs cleanly and importing
the package does not load torch.

Example:
    >>> from ctpipe.engines.config import load_train_config  # doctest: +SKIP
    >>> from ctpipe.engines.denoise import train_denoiser  # doctest: +SKIP
    >>> config = load_train_config("workflows/training/denoise_redcnn_cpu.yaml")  # doctest: +SKIP
    >>> result = train_denoiser(config)  # doctest: +SKIP
"""
