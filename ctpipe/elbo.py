r"""The evidence lower bound (ELBO) of a Gaussian VAE: closed-form KL, likelihood, warm-up.

For an image ``x``, an encoder ``q(z|x) = N(mu, diag(sigma^2))`` (it predicts ``mu`` and the
log-variance ``log sigma^2``) and a decoder ``p(x|z)``, Kingma & Welling (2014) maximise

.. math::

    \mathrm{ELBO}(x) = E_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, N(0, I))
    \le \log p(x).

The KL term of a diagonal Gaussian against the standard normal has a closed form
(:func:`gaussian_kl`),

.. math::

    \mathrm{KL} = \tfrac12 \sum_d \left(\sigma_d^2 + \mu_d^2 - 1 - \log \sigma_d^2\right),

and the expectation is estimated with ``z = mu + sigma * eps``, ``eps ~ N(0, I)`` (the
reparameterisation, :func:`reparameterize`), which keeps the estimate differentiable in
``mu`` and ``sigma``.

The decoder is Gaussian per pixel (:func:`reconstruction_nll` returns ``-log p(x|z)``
summed over the pixels of each image, in nats, constants included):

* ``"mse"``: a fixed standard deviation ``sigma`` for every pixel, so ``-log p`` is the sum
  of squared errors over ``2 sigma^2`` plus a constant; ``sigma`` sets the balance between
  reconstruction and KL;
* ``"gaussian_nll"``: the decoder also predicts each pixel's log-variance, floored at
  ``log(min_sigma^2)`` (clipped, window-saturated pixels would otherwise drive the variance
  to zero and the likelihood to infinity).

:class:`ELBOLoss` is the training loss: the batch mean of ``-log p(x|z) + beta * KL``
(beta = 1 is the ELBO; beta > 1 is the beta-VAE of Higgins et al. 2017). ``beta`` is an
attribute so that a warm-up handler can raise it during training (:func:`kl_warmup_beta`,
Bowman et al. 2016).

Example:
    >>> import torch
    >>> mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    >>> gaussian_kl(mu, logvar).tolist()  # q = N(0, I) is the prior: no divergence
    [0.0, 0.0]
    >>> x = torch.full((2, 1, 3, 3), 0.5)
    >>> loss = ELBOLoss("mse", sigma=1.0, beta=1.0)
    >>> nll = loss.terms(x, x, mu, logvar)["reconstruction_nll"]
    >>> round(float(nll[0]), 3)  # 9 pixels * log(2 pi) / 2: a perfect reconstruction
    8.27
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "RECONSTRUCTIONS",
    "ELBOLoss",
    "gaussian_kl",
    "kl_warmup_beta",
    "reconstruction_nll",
    "reparameterize",
]

#: Reconstruction likelihoods :class:`ELBOLoss` knows.
RECONSTRUCTIONS = ("mse", "gaussian_nll")

Reconstruction = Literal["mse", "gaussian_nll"]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mu, diag(exp(logvar))) || N(0, I))`` of each sample, in nats.

    Args:
        mu: Posterior means, ``(batch, *latent)``.
        logvar: Posterior log-variances, same shape.

    Returns:
        ``(batch,)``: the divergence summed over every latent dimension.

    Example:
        >>> import torch
        >>> round(float(gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1))), 6)  # mu**2 / 2
        0.5
    """
    _check_same_shape(mu, logvar, "mu", "logvar")
    per_dim = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar)
    return per_dim.flatten(1).sum(dim=1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw ``z = mu + sigma * eps`` with ``eps ~ N(0, I)``, differentiable in mu and logvar.

    Args:
        mu: Posterior means.
        logvar: Posterior log-variances, same shape.
        generator: Random generator of ``eps`` (for repeatable draws); ``None`` uses torch's
            global one.

    Returns:
        A sample of ``q(z|x)``, shaped like ``mu``.

    Example:
        >>> import torch
        >>> z = reparameterize(torch.zeros(1000, 2), torch.zeros(1000, 2))
        >>> z.shape
        torch.Size([1000, 2])
    """
    _check_same_shape(mu, logvar, "mu", "logvar")
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def reconstruction_nll(
    x: torch.Tensor,
    x_mean: torch.Tensor,
    *,
    sigma: float | None = None,
    x_logvar: torch.Tensor | None = None,
    min_sigma: float = 1e-3,
) -> torch.Tensor:
    """``-log p(x|z)`` of a per-pixel Gaussian decoder, summed over each image, in nats.

    Exactly one of ``sigma`` (a fixed standard deviation: the ``"mse"`` likelihood) and
    ``x_logvar`` (predicted log-variances: the ``"gaussian_nll"`` likelihood) is given.
    The sum uses :func:`torch.nn.functional.gaussian_nll_loss` with its constant
    ``log(2 pi) / 2`` per pixel.

    Args:
        x: The images, ``(batch, channels, *spatial)``.
        x_mean: The decoder's means, same shape.
        sigma: The fixed standard deviation (> 0).
        x_logvar: The decoder's log-variances, same shape as ``x``.
        min_sigma: Floor of the predicted standard deviation (> 0).

    Returns:
        ``(batch,)`` negative log-likelihoods.

    Raises:
        ValueError: Both or neither of ``sigma`` and ``x_logvar``, a non-positive sigma, or
            shapes that differ.

    Example:
        >>> import torch
        >>> x = torch.zeros(1, 1, 1, 2)
        >>> nll = reconstruction_nll(x, x + 1.0, sigma=1.0)  # 2 * (1/2 + log(2 pi)/2)
        >>> round(float(nll), 4)
        2.8379
    """
    _check_same_shape(x, x_mean, "x", "x_mean")
    if (sigma is None) == (x_logvar is None):
        raise ValueError("give exactly one of sigma (fixed) and x_logvar (predicted)")
    if not min_sigma > 0:
        raise ValueError(f"min_sigma must be > 0, got {min_sigma!r}")
    if x_logvar is not None:
        _check_same_shape(x, x_logvar, "x", "x_logvar")
        variance = x_logvar.clamp(min=2.0 * math.log(min_sigma)).exp()
    else:
        if not (sigma is not None and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
        variance = torch.full_like(x_mean, float(sigma) ** 2)
    tiny = torch.finfo(variance.dtype).tiny  # the floors above apply, not torch's 1e-6
    per_pixel = F.gaussian_nll_loss(x_mean, x, variance, full=True, eps=tiny, reduction="none")
    return per_pixel.flatten(1).sum(dim=1)


def kl_warmup_beta(iteration: int, *, beta: float, warmup_iterations: int) -> float:
    """The KL weight at a training iteration: linear from 0 to ``beta`` over the warm-up.

    Args:
        iteration: Iterations completed so far, counting the current one (1 at the first).
        beta: The final weight.
        warmup_iterations: Iterations to reach ``beta``; 0 uses ``beta`` from the start.

    Returns:
        ``beta * min(1, iteration / warmup_iterations)``.

    Example:
        >>> [kl_warmup_beta(i, beta=1.0, warmup_iterations=4) for i in (1, 2, 4, 9)]
        [0.25, 0.5, 1.0, 1.0]
    """
    if warmup_iterations < 0:
        raise ValueError(f"warmup_iterations must be >= 0, got {warmup_iterations!r}")
    if warmup_iterations == 0:
        return float(beta)
    return float(beta) * min(1.0, max(iteration, 0) / warmup_iterations)


class ELBOLoss(nn.Module):
    """Negative beta-weighted ELBO, averaged over the batch: the VAE training loss.

    Args:
        reconstruction: ``"mse"`` (fixed ``sigma``) or ``"gaussian_nll"`` (the decoder
            predicts each pixel's log-variance).
        sigma: The fixed decoder standard deviation of ``"mse"`` (image units).
        min_sigma: Floor of the predicted standard deviation of ``"gaussian_nll"``.
        beta: Weight of the KL term (1: the ELBO).

    Raises:
        ValueError: An unknown reconstruction or a value out of its range.

    Example:
        >>> import torch
        >>> loss = ELBOLoss("mse", sigma=0.1, beta=0.5)
        >>> x = torch.rand(4, 1, 8, 8)
        >>> value = loss.forward_terms(x, x, torch.zeros(4, 3), torch.zeros(4, 3))
        >>> sorted(value)
        ['kl', 'loss', 'reconstruction_nll']
    """

    def __init__(
        self,
        reconstruction: Reconstruction = "mse",
        *,
        sigma: float = 0.1,
        min_sigma: float = 0.01,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(
                f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, "
                f"got {reconstruction!r}"
            )
        for name, value in (("sigma", sigma), ("min_sigma", min_sigma)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        self.reconstruction = reconstruction
        self.sigma = float(sigma)
        self.min_sigma = float(min_sigma)
        self.beta = float(beta)
        #: Batch means of the last call's terms (floats): ``reconstruction_nll``, ``kl``.
        self.last_terms: dict[str, float] = {}

    def terms(
        self,
        x: torch.Tensor,
        x_mean: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        x_logvar: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-image ``reconstruction_nll`` and ``kl`` (each ``(batch,)``, nats)."""
        if self.reconstruction == "mse":
            nll = reconstruction_nll(x, x_mean, sigma=self.sigma)
        else:
            if x_logvar is None:
                raise ValueError(
                    "reconstruction 'gaussian_nll' needs the decoder's log-variances "
                    "(a VAE built with reconstruction='gaussian_nll')"
                )
            nll = reconstruction_nll(x, x_mean, x_logvar=x_logvar, min_sigma=self.min_sigma)
        return {"reconstruction_nll": nll, "kl": gaussian_kl(mu, logvar)}

    def forward_terms(
        self,
        x: torch.Tensor,
        x_mean: torch.Tensor,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        x_logvar: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The loss (scalar) with its per-image terms."""
        terms = self.terms(x, x_mean, mu, logvar, x_logvar)
        loss = (terms["reconstruction_nll"] + self.beta * terms["kl"]).mean()
        return {"loss": loss, **terms}

    def forward(self, output: object, x: torch.Tensor) -> torch.Tensor:
        """The loss of a VAE's output for the images ``x`` (the MONAI trainer's call).

        Args:
            output: What :class:`ctpipe.nets.vae.VAE` returns: an object with ``x_mean``,
                ``mu``, ``logvar`` and ``x_logvar`` (``None`` for ``"mse"`` models).
            x: The images that were encoded.

        Returns:
            ``mean(-log p(x|z) + beta * KL)`` over the batch.
        """
        values = self.forward_terms(
            x,
            output.x_mean,  # type: ignore[attr-defined]
            output.mu,  # type: ignore[attr-defined]
            output.logvar,  # type: ignore[attr-defined]
            output.x_logvar,  # type: ignore[attr-defined]
        )
        self.last_terms = {
            "reconstruction_nll": float(values["reconstruction_nll"].detach().mean()),
            "kl": float(values["kl"].detach().mean()),
            "beta": self.beta,
        }
        return values["loss"]


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
