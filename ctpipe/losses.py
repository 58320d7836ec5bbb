r"""Segmentation losses: the seed's squared Dice form, pixel-wise cross-entropy and both.

The seed's Dice loss of one class ``c`` (probabilities ``p``, one-hot target ``t``, sums
over every voxel of every image in the batch) is

.. math::

    L_c = 1 - \frac{2 \sum t p}{\sum t^2 + \sum p^2},

and the loss is the weighted **sum** over classes, ``L = sum_c w_c L_c`` (not the mean),
so a perfect prediction scores 0 and each scored class adds at most ``w_c``.
:class:`SeedDiceLoss` writes this out. MONAI's ``DiceLoss(squared_pred=True,
batch=True)`` has the same form on paper, but it forms ``sum t p`` from norms,
``(|p|^2 + |t|^2 - |p - t|^2) / 2``, which drifts from the direct sum (by ~1e-8 relative
in float64 on random inputs), and it drops class weights when one class is scored; so the
seed form is computed directly. ``smooth`` (0 by default: the exact seed form) is added to
numerator and denominator. After softmax or sigmoid every probability is positive, so no
denominator is ever 0.

:class:`PixelCrossEntropyLoss` is the mean over voxels of the (class-weighted)
cross-entropy; :class:`SeedDiceCELoss` adds the two. MONAI's ``DiceCELoss`` is not used for
the sum: it gives cross-entropy the Dice reduction, so ``reduction="sum"`` would also sum
cross-entropy over voxels instead of averaging it. Build any of them by name with
:func:`build_segmentation_loss`.

Inputs are logits ``(B, C, *spatial)`` and an integer label map ``(B, 1, *spatial)`` (or
``(B, *spatial)``) with values ``0 .. C - 1``; channel ``k`` scores label ``k`` and
channel 0 is the background.

Example:
    >>> import torch
    >>> loss = build_segmentation_loss("dice_ce", num_classes=3, class_weights=(0.5, 1, 1))
    >>> logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    >>> labels = torch.randint(0, 3, (2, 1, 8, 8))
    >>> value = loss(logits, labels)
    >>> value.shape, bool(value > 0)
    (torch.Size([]), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LOSS_NAMES",
    "PixelCrossEntropyLoss",
    "SeedDiceCELoss",
    "SeedDiceLoss",
    "build_segmentation_loss",
]

#: Names :func:`build_segmentation_loss` knows.
LOSS_NAMES = ("dice", "ce", "dice_ce")

Activation = Literal["softmax", "sigmoid"]


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 (background plus at least one class), "
            f"got {num_classes!r}"
        )
    return num_classes


def _check_activation(activation: str) -> str:
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    return activation


def _check_weights(class_weights: Sequence[float] | None, num_classes: int) -> torch.Tensor | None:
    """Class weights as a float tensor of length ``num_classes``, or ``None``."""
    if class_weights is None:
        return None
    weights = [float(w) for w in class_weights]
    if len(weights) != num_classes:
        raise ValueError(
            f"class_weights must have one weight per class including the background "
            f"({num_classes}), got {len(weights)}: {list(class_weights)!r}"
        )
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"class_weights must be finite and >= 0, got {list(class_weights)!r}")
    return torch.tensor(weights, dtype=torch.float64)


def _check_inputs(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The label map as ``(B, 1, *spatial)`` int64, after checking shapes and values."""
    if logits.ndim < 3 or logits.shape[1] != num_classes:
        raise ValueError(
            f"logits must have shape (B, {num_classes}, *spatial), got {tuple(logits.shape)}"
        )
    if labels.ndim == logits.ndim - 1:
        labels = labels.unsqueeze(1)
    if (
        labels.shape[0] != logits.shape[0]
        or labels.shape[2:] != logits.shape[2:]
        or (labels.shape[1] != 1)
    ):
        raise ValueError(
            f"labels must have shape (B, 1, *spatial) matching logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError("labels must hold integer label values, got fractional values")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0 .. {num_classes - 1}, got values "
            f"{int(labels.min())} .. {int(labels.max())}"
        )
    return labels


class SeedDiceLoss(nn.Module):
    """The seed's squared Dice loss: one ratio per class over the batch, summed over classes.

    Args:
        num_classes: Output channels, background included (>= 2).
        include_background: Whether channel 0 (background) is scored.
        class_weights: One non-negative weight per class, background first (length
            ``num_classes``); with ``include_background=False`` the background weight is
            ignored. ``None``: every class weighs 1.
        activation: ``"softmax"`` (mutually exclusive classes) or ``"sigmoid"`` (each
            channel on its own) applied to the logits.
        smooth: Added to numerator and denominator of each class's ratio (0: the seed form).

    Raises:
        ValueError: A bad ``num_classes``, ``class_weights``, ``activation`` or negative
            ``smooth``; in ``forward``, inputs of the wrong shape or labels out of range.

    Example:
        >>> import torch
        >>> labels = torch.tensor([[[[0, 1], [1, 1]]]])
        >>> perfect = 50.0 * torch.cat([labels == 0, labels == 1], dim=1).float()
        >>> round(float(SeedDiceLoss(2)(perfect, labels)), 6)
        0.0
    """

    def __init__(
        self,
        num_classes: int,
        *,
        include_background: bool = True,
        class_weights: Sequence[float] | None = None,
        activation: Activation = "softmax",
        smooth: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = _check_num_classes(num_classes)
        self.activation = _check_activation(activation)
        weights = _check_weights(class_weights, num_classes)
        if not math.isfinite(smooth) or smooth < 0:
            raise ValueError(f"smooth must be a finite number >= 0, got {smooth!r}")
        if weights is None:
            weights = torch.ones(num_classes, dtype=torch.float64)
        if not include_background:
            weights = weights[1:]
        self.include_background = include_background
        self.smooth = float(smooth)
        self.register_buffer("weight", weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of logits ``(B, C, *spatial)`` against labels ``(B, 1, *spatial)``."""
        labels = _check_inputs(logits, labels, self.num_classes)
        if self.activation == "softmax":
            probs = torch.softmax(logits, dim=1)
        else:
            probs = torch.sigmoid(logits)
        target = F.one_hot(labels[:, 0], self.num_classes).movedim(-1, 1).to(probs)
        if not self.include_background:
            probs, target = probs[:, 1:], target[:, 1:]
        axes = [0, *range(2, probs.ndim)]  # batch and space: one ratio per class
        overlap = (target * probs).sum(dim=axes)
        denominator = (target * target).sum(dim=axes) + (probs * probs).sum(dim=axes)
        per_class = 1 - (2 * overlap + self.smooth) / (denominator + self.smooth)
        return (per_class * self.weight.to(per_class)).sum()


class PixelCrossEntropyLoss(nn.Module):
    """Voxel-wise cross-entropy, averaged over voxels (weighted mean with class weights).

    With ``activation="softmax"`` it is :func:`torch.nn.functional.cross_entropy`; with
    ``"sigmoid"`` it is binary cross-entropy of every channel against its one-hot target,
    channel ``k`` weighted by ``class_weights[k]``, averaged over channels and voxels.

    Args:
        num_classes: Output channels, background included (>= 2).
        class_weights: One non-negative weight per class, background first, or ``None``.
        activation: ``"softmax"`` or ``"sigmoid"``.

    Raises:
        ValueError: A bad ``num_classes``, ``class_weights`` or ``activation``; in
            ``forward``, inputs of the wrong shape or labels out of range.

    Example:
        >>> import torch
        >>> loss = PixelCrossEntropyLoss(2)
        >>> round(float(loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 3))), 4)  # log 2
        0.6931
    """

    def __init__(
        self,
        num_classes: int,
        *,
        class_weights: Sequence[float] | None = None,
        activation: Activation = "softmax",
    ) -> None:
        super().__init__()
        self.num_classes = _check_num_classes(num_classes)
        self.activation = _check_activation(activation)
        self.register_buffer("weight", _check_weights(class_weights, num_classes))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of logits ``(B, C, *spatial)`` against labels ``(B, 1, *spatial)``."""
        labels = _check_inputs(logits, labels, self.num_classes)[:, 0]
        weight = None if self.weight is None else self.weight.to(logits)
        if self.activation == "softmax":
            return F.cross_entropy(logits, labels, weight=weight)
        target = F.one_hot(labels, self.num_classes).movedim(-1, 1).to(logits)
        per_voxel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if weight is not None:
            per_voxel = per_voxel * weight.view(1, -1, *([1] * (logits.ndim - 2)))
        return per_voxel.mean()


class SeedDiceCELoss(nn.Module):
    """``lambda_dice * SeedDiceLoss + lambda_ce * PixelCrossEntropyLoss``.

    Args:
        num_classes: Output channels, background included (>= 2).
        include_background: Whether the Dice term scores the background (cross-entropy
            always scores every class).
        class_weights: One weight per class, background first, used by both terms.
        activation: ``"softmax"`` or ``"sigmoid"``.
        smooth: Dice smoothing (0: the seed form).
        lambda_dice: Weight of the Dice term (>= 0).
        lambda_ce: Weight of the cross-entropy term (>= 0).

    Raises:
        ValueError: As the two terms, or a negative or non-finite ``lambda_*``.

    Example:
        >>> import torch
        >>> loss = SeedDiceCELoss(2, lambda_dice=0.0)
        >>> round(float(loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 3, 3))), 4)
        0.6931
    """

    def __init__(
        self,
        num_classes: int,
        *,
        include_background: bool = True,
        class_weights: Sequence[float] | None = None,
        activation: Activation = "softmax",
        smooth: float = 0.0,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
    ) -> None:
        super().__init__()
        for name, value in (("lambda_dice", lambda_dice), ("lambda_ce", lambda_ce)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.dice = SeedDiceLoss(
            num_classes,
            include_background=include_background,
            class_weights=class_weights,
            activation=activation,
            smooth=smooth,
        )
        self.ce = PixelCrossEntropyLoss(
            num_classes, class_weights=class_weights, activation=activation
        )
        self.lambda_dice = float(lambda_dice)
        self.lambda_ce = float(lambda_ce)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of logits ``(B, C, *spatial)`` against labels ``(B, 1, *spatial)``."""
        return self.lambda_dice * self.dice(logits, labels) + self.lambda_ce * self.ce(
            logits, labels
        )


def build_segmentation_loss(
    name: str,
    *,
    num_classes: int,
    include_background: bool = True,
    class_weights: Sequence[float] | None = None,
    activation: Activation = "softmax",
    smooth: float = 0.0,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
) -> nn.Module:
    """Build a segmentation loss by name: ``"dice"``, ``"ce"`` or ``"dice_ce"``.

    Args:
        name: One of :data:`LOSS_NAMES`.
        num_classes: Output channels, background included (>= 2).
        include_background: Whether Dice scores the background. Cross-entropy always
            scores every class, so ``"ce"`` refuses ``False``.
        class_weights: One weight per class, background first, or ``None``.
        activation: ``"softmax"`` or ``"sigmoid"``.
        smooth: Dice smoothing (0: the seed form); ``"dice"`` and ``"dice_ce"`` only.
        lambda_dice: Weight of the Dice term of ``"dice_ce"``.
        lambda_ce: Weight of the cross-entropy term of ``"dice_ce"``.

    Returns:
        A module called as ``loss(logits, labels)`` returning a scalar.

    Raises:
        ValueError: An unknown name (the known ones are listed), ``"ce"`` with
            ``include_background=False``, or a bad argument of the loss.

    Example:
        >>> type(build_segmentation_loss("dice", num_classes=8)).__name__
        'SeedDiceLoss'
        >>> build_segmentation_loss("dise", num_classes=8)
        Traceback (most recent call last):
        ...
        ValueError: unknown segmentation loss 'dise'; known: dice, ce, dice_ce; did you mean 'dice'?
    """
    from ctpipe.schema import did_you_mean

    if name not in LOSS_NAMES:
        raise ValueError(
            f"unknown segmentation loss {name!r}; known: {', '.join(LOSS_NAMES)}"
            + did_you_mean(str(name), list(LOSS_NAMES))
        )
    if name == "dice":
        return SeedDiceLoss(
            num_classes,
            include_background=include_background,
            class_weights=class_weights,
            activation=activation,
            smooth=smooth,
        )
    if name == "ce":
        if not include_background:
            raise ValueError(
                "include_background=False applies to Dice only; cross-entropy ('ce') "
                "scores every class"
            )
        return PixelCrossEntropyLoss(
            num_classes, class_weights=class_weights, activation=activation
        )
    return SeedDiceCELoss(
        num_classes,
        include_background=include_background,
        class_weights=class_weights,
        activation=activation,
        smooth=smooth,
        lambda_dice=lambda_dice,
        lambda_ce=lambda_ce,
    )
