"""The shipped DCGAN: loadable, described by its card, and usable on an unseen CT slice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ctpipe.steps import STEPS
from ctpipe.weights import DEFAULT_GAN, load_default_gan, model_card, weights_path
from tests.conftest import shared_path


def test_default_gan_loads_in_eval_mode_with_its_window():
    gan = load_default_gan()
    assert not gan.generator.training and not gan.discriminator.training
    assert gan.window == (-1024.0, 1024.0)
    assert gan.generator.image_size == 64 and gan.generator.latent_size == 100
    assert gan.record["format"] == "ctpipe.gan"
    assert weights_path(DEFAULT_GAN).stat().st_size < 4_000_000
    assert STEPS["inpaint"].shipped_weights == DEFAULT_GAN


def test_model_card_describes_data_recipe_command_and_metrics():
    card = model_card(DEFAULT_GAN).lower()
    for words in (
        "l096",
        "l143",
        "l192",
        "pancreas",
        "gan_dcgan_cpu.yaml",
        "ctpipe train gan",
        "instance noise",
        "psnr",
        "ssim",
        "biharmonic",
        "sha256",
        "held out",
    ):
        assert words in card, words


@pytest.mark.shared_data
def test_fits_an_unseen_patient_slice_better_than_an_untrained_generator():
    import torch

    from ctpipe.inpaint.search import SearchSettings
    from ctpipe.inpaint.volume import InpaintSettings, inpaint_volume
    from ctpipe.io.reader import load_ct
    from ctpipe.nets.dcgan import DCGANDiscriminator, DCGANGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = shared_path("aapm_ldct_pairs", "L192", "full_3mm_D45")
        image = np.asarray(load_ct(path, allow_irregular=True))[:, :, :1].astype(np.float32)
    mask = np.zeros(image.shape, bool)
    mask[180:196, 300:316, 0] = True  # 16 x 16 pixels inside the abdomen
    settings = InpaintSettings(search=SearchSettings(iterations=60), pool_size=256)
    gan = load_default_gan()
    trained = inpaint_volume(image, mask, gan.generator, gan.discriminator, settings=settings)
    torch.manual_seed(0)
    untrained = inpaint_volume(
        image,
        mask,
        DCGANGenerator().eval(),
        DCGANDiscriminator().eval(),
        window=gan.window,
        settings=settings,
    )
    assert np.array_equal(trained.hu[~mask], image[~mask])
    # the context (known pixels of the 64 x 64 tile) is matched better by the trained model
    # (67 vs 95 HU when written; an untrained DCGAN fits CT texture poorly, not badly)
    fit, baseline = trained.slices[0].context_mae_hu, untrained.slices[0].context_mae_hu
    assert fit < 0.85 * baseline, (fit, baseline)
