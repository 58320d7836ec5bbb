"""Segmentation losses: hand-computed values, a numpy reference, weights and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ctpipe.losses import (
    PixelCrossEntropyLoss,
    SeedDiceCELoss,
    SeedDiceLoss,
    build_segmentation_loss,
)

LOG3 = math.log(3.0)


@pytest.fixture
def tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-class 2x2 image whose softmax probabilities are quarters.

    Labels [[0, 1], [1, 1]]. Channel-0 logits are 0 and channel-1 logits
    [[-log 3, log 3], [log 3, 0]], so p1 = sigmoid(z1 - z0) = [[1/4, 3/4], [3/4, 1/2]]
    and p0 = 1 - p1 = [[3/4, 1/4], [1/4, 1/2]].
    """
    logits = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    logits[0, 1] = torch.tensor([[-LOG3, LOG3], [LOG3, 0.0]], dtype=torch.float64)
    labels = torch.tensor([[[[0, 1], [1, 1]]]])
    return logits, labels


# Class 0: t0 = [1, 0, 0, 0], p0 = [3/4, 1/4, 1/4, 1/2]
#   sum t p = 3/4; sum t^2 = 1; sum p^2 = 9/16 + 1/16 + 1/16 + 4/16 = 15/16
#   L0 = 1 - (3/2) / (31/16) = 1 - 24/31 = 7/31
# Class 1: t1 = [0, 1, 1, 1], p1 = [1/4, 3/4, 3/4, 1/2]
#   sum t p = 3/4 + 3/4 + 1/2 = 2; sum t^2 = 3; sum p^2 = 1/16 + 9/16 + 9/16 + 4/16 = 23/16
#   L1 = 1 - 4 / (71/16) = 1 - 64/71 = 7/71
L0 = 7 / 31
L1 = 7 / 71
# Summed over classes: 7/31 + 7/71 = 714/2201 = 0.3243980...
DICE_SUM = 714 / 2201
# Cross-entropy: -(log 3/4 + log 3/4 + log 3/4 + log 1/2) / 4 = (3 log 4/3 + log 2) / 4
CE = (3 * math.log(4 / 3) + math.log(2)) / 4  # 0.3890482...


def test_dice_matches_the_hand_computed_value(tiny):
    logits, labels = tiny
    assert abs(DICE_SUM - 0.3243980) < 1e-7
    assert float(SeedDiceLoss(2)(logits, labels)) == pytest.approx(DICE_SUM, rel=1e-12)


def test_dice_without_background_scores_class_one_only(tiny):
    logits, labels = tiny
    loss = SeedDiceLoss(2, include_background=False)
    assert float(loss(logits, labels)) == pytest.approx(L1, rel=1e-12)


def test_class_weights_scale_each_class(tiny):
    logits, labels = tiny
    loss = SeedDiceLoss(2, class_weights=(1.0, 2.0))
    assert float(loss(logits, labels)) == pytest.approx(L0 + 2 * L1, rel=1e-12)  # 931/2201
    no_bg = SeedDiceLoss(2, include_background=False, class_weights=(5.0, 2.0))
    assert float(no_bg(logits, labels)) == pytest.approx(2 * L1, rel=1e-12)


def test_cross_entropy_matches_the_hand_computed_value(tiny):
    logits, labels = tiny
    assert float(PixelCrossEntropyLoss(2)(logits, labels)) == pytest.approx(CE, rel=1e-12)
    # Weights (1, 2): pixel 0 (class 0) weighs 1, the three class-1 pixels weigh 2 each.
    weighted = (math.log(4 / 3) + 2 * 2 * math.log(4 / 3) + 2 * math.log(2)) / 7
    loss = PixelCrossEntropyLoss(2, class_weights=(1, 2))
    assert float(loss(logits, labels)) == pytest.approx(weighted, rel=1e-12)


def test_dice_ce_adds_the_weighted_terms(tiny):
    logits, labels = tiny
    loss = SeedDiceCELoss(2, lambda_dice=0.5, lambda_ce=2.0)
    assert float(loss(logits, labels)) == pytest.approx(0.5 * DICE_SUM + 2 * CE, rel=1e-12)


def numpy_seed_dice(
    logits: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    include_background: bool,
    activation: str,
) -> float:
    """The seed form written out: per class over the whole batch, summed over classes."""
    if activation == "softmax":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
    else:
        p = 1 / (1 + np.exp(-logits))
    total = 0.0
    for c in range(0 if include_background else 1, logits.shape[1]):
        t = (labels[:, 0] == c).astype(np.float64)
        pc = p[:, c]
        total += weights[c] * (1 - 2 * (t * pc).sum() / ((t**2).sum() + (pc**2).sum()))
    return total


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("spatial", [(7, 5), (4, 5, 3)])
def test_dice_matches_a_numpy_reference(rng, activation, include_background, spatial):
    logits = rng.normal(0, 2, size=(3, 4, *spatial))
    labels = rng.integers(0, 4, size=(3, 1, *spatial))
    weights = rng.uniform(0.2, 2.0, size=4)
    loss = SeedDiceLoss(
        4,
        include_background=include_background,
        class_weights=tuple(weights),
        activation=activation,
    )
    got = float(loss(torch.from_numpy(logits), torch.from_numpy(labels)))
    want = numpy_seed_dice(logits, labels, weights, include_background, activation)
    assert got == pytest.approx(want, rel=1e-10)


def test_sigmoid_cross_entropy_matches_a_numpy_reference(rng):
    logits = rng.normal(size=(2, 3, 6, 6))
    labels = rng.integers(0, 3, size=(2, 1, 6, 6))
    weights = np.array([0.5, 1.0, 2.0])
    t = np.eye(3)[labels[:, 0]].transpose(0, 3, 1, 2)
    p = 1 / (1 + np.exp(-logits))
    want = (-(t * np.log(p) + (1 - t) * np.log(1 - p)) * weights[None, :, None, None]).mean()
    loss = PixelCrossEntropyLoss(3, class_weights=tuple(weights), activation="sigmoid")
    got = float(loss(torch.from_numpy(logits), torch.from_numpy(labels)))
    assert got == pytest.approx(want, rel=1e-10)


def test_dice_agrees_with_monai_squared_dice_to_float_precision(rng):
    from monai.losses import DiceLoss

    logits = torch.from_numpy(rng.normal(size=(2, 3, 6, 5)))
    labels = torch.from_numpy(rng.integers(0, 3, size=(2, 1, 6, 5)))
    monai = DiceLoss(
        to_onehot_y=True,
        softmax=True,
        squared_pred=True,
        batch=True,
        reduction="sum",
        smooth_nr=0.0,
        smooth_dr=0.0,
    )
    want = float(monai(logits, labels))
    assert float(SeedDiceLoss(3)(logits, labels)) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("include_background", [True, False])
def test_perfect_prediction_scores_zero(include_background):
    labels = torch.tensor([[[[0, 1, 2], [2, 1, 0], [1, 1, 2]]]])
    logits = 100.0 * torch.nn.functional.one_hot(labels[:, 0], 3).movedim(-1, 1).double()
    loss = SeedDiceLoss(3, include_background=include_background)
    assert float(loss(logits, labels)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", ["dice", "ce", "dice_ce"])
def test_gradient_is_finite(rng, name):
    logits = torch.tensor(rng.normal(size=(2, 3, 8, 8)), requires_grad=True)
    labels = torch.from_numpy(rng.integers(0, 3, size=(2, 1, 8, 8)))
    loss = build_segmentation_loss(name, num_classes=3, class_weights=(0.2, 1, 3))
    loss(logits, labels).backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_labels_without_channel_axis_are_accepted(tiny):
    logits, labels = tiny
    assert float(SeedDiceLoss(2)(logits, labels[:, 0])) == pytest.approx(DICE_SUM)


def test_factory_builds_each_loss():
    assert isinstance(build_segmentation_loss("dice", num_classes=2), SeedDiceLoss)
    assert isinstance(build_segmentation_loss("ce", num_classes=2), PixelCrossEntropyLoss)
    assert isinstance(build_segmentation_loss("dice_ce", num_classes=2), SeedDiceCELoss)


def test_factory_rejects_an_unknown_name():
    with pytest.raises(ValueError, match=r"unknown segmentation loss 'dic'.*did you mean 'dice'"):
        build_segmentation_loss("dic", num_classes=2)


def test_factory_refuses_ce_without_background():
    with pytest.raises(ValueError, match="include_background=False applies to Dice only"):
        build_segmentation_loss("ce", num_classes=2, include_background=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_weights": (1.0, 2.0)}, r"one weight per class .*\(3\), got 2"),
        ({"class_weights": (1.0, -1.0, 1.0)}, r"finite and >= 0, got \[1.0, -1.0, 1.0\]"),
        ({"activation": "relu"}, "activation must be 'softmax' or 'sigmoid', got 'relu'"),
        ({"smooth": -1.0}, "smooth must be a finite number >= 0, got -1.0"),
        ({"lambda_ce": -0.5}, "lambda_ce must be a finite number >= 0, got -0.5"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_segmentation_loss("dice_ce", num_classes=3, **kwargs)


def test_num_classes_must_be_at_least_two():
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 2.*got 1"):
        SeedDiceLoss(1)


def test_bad_inputs_are_named(tiny):
    logits, labels = tiny
    loss = SeedDiceLoss(2)
    with pytest.raises(ValueError, match=r"logits must have shape \(B, 2, \*spatial\)"):
        loss(logits[:, :1], labels)
    with pytest.raises(ValueError, match=r"labels must have shape \(B, 1, \*spatial\)"):
        loss(logits, labels[..., :1])
    with pytest.raises(ValueError, match=r"labels must lie in 0 .. 1, got values 0 .. 2"):
        loss(logits, labels * 2)
    with pytest.raises(ValueError, match="labels must hold integer label values"):
        loss(logits, labels.double() / 2)
