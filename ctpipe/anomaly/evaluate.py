"""Evaluate anomaly scoring with synthetic lesions inserted into slices the model never saw.

:func:`lesion_trial` scores the chosen slices of a volume twice, as they are and with
synthetic lesions (:class:`~ctpipe.anomaly.lesions.RandomLesions`), and keeps what the
AUROCs need:

* **pixel level**: the anomaly map of the lesioned slices at every body pixel inside the
  model's field of view, labelled by the lesion mask;
* **slice level**: the negative ELBO of each slice without and with its lesion (the same
  anatomy, so the score has to rise because of the lesion alone), and, as a second slice
  score, the 99th percentile of the map in the body.

:func:`summarise_trials` pools trials (e.g. one per held-out series) into AUROCs
(:func:`~ctpipe.anomaly.auroc.auroc`), overall and per lesion kind (hypo-/hyper-dense).

Example:
    >>> import numpy as np
    >>> from ctpipe.anomaly.lesions import RandomLesions
    >>> from ctpipe.nets.vae import VAE
    >>> from ctpipe.slice_grid import SliceGrid
    >>> vae = VAE((32, 32), latent_dim=4, channels=(4, 8))
    >>> hu = np.full((64, 64, 2), -1000.0, np.float32)
    >>> hu[4:60, 4:60] = 50.0
    >>> trial = lesion_trial(hu, (1.5, 1.5), vae, RandomLesions(radius_mm=(5, 8)),
    ...                      grid=SliceGrid((32, 32), pixel_mm=3.0), sigma=0.1, samples=1)
    >>> summary = summarise_trials([trial])
    >>> sorted(summary["pixel"]), summary["slices"]
    (['auroc', 'auroc_hyper', 'auroc_hypo', 'lesion_pixels', 'normal_pixels'], 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ctpipe.anomaly.auroc import auroc

if TYPE_CHECKING:
    from ctpipe.anomaly.lesions import Lesion, RandomLesions
    from ctpipe.nets.vae import VAE

__all__ = ["LesionTrial", "lesion_trial", "summarise_trials"]


@dataclass(frozen=True)
class LesionTrial:
    """Scores of one volume's slices without and with synthetic lesions.

    Attributes:
        name: What was scored (for reports).
        lesions: The lesions inserted.
        pixel_scores: Map values (HU) at the scored pixels of the lesioned slices.
        pixel_labels: True where a scored pixel is in a lesion.
        pixel_kinds: ``"hypo"``, ``"hyper"`` or ``""`` (normal) for each scored pixel.
        clean_scores: Negative ELBO of each lesioned slice before insertion.
        lesion_scores: Negative ELBO of the same slices with their lesions.
        clean_p99: 99th percentile of the map in the body, before insertion.
        lesion_p99: The same with the lesions.
    """

    name: str
    lesions: tuple[Lesion, ...]
    pixel_scores: np.ndarray = field(repr=False)
    pixel_labels: np.ndarray = field(repr=False)
    pixel_kinds: np.ndarray = field(repr=False)
    clean_scores: np.ndarray
    lesion_scores: np.ndarray
    clean_p99: np.ndarray
    lesion_p99: np.ndarray


def lesion_trial(
    volume_hu: np.ndarray,
    spacing: Sequence[float],
    model: VAE,
    lesions: RandomLesions,
    *,
    slices: Sequence[int] | None = None,
    name: str = "volume",
    **scorer_kwargs: Any,
) -> LesionTrial:
    """Insert lesions into ``slices`` of a volume and score them with and without.

    Args:
        volume_hu: HU ``(i, j, k)`` of anatomy the model never saw.
        spacing: Voxel size in mm, ``(i, j[, k])``.
        model: The VAE.
        lesions: The lesion generator (seeded).
        slices: Slices to use (all by default); slices without room for a lesion are left
            out.
        name: Name of the trial.
        **scorer_kwargs: Settings of :class:`~ctpipe.anomaly.scorer.VAEAnomalyScorer`.

    Returns:
        The pooled pixel scores and the per-slice scores.

    Raises:
        ValueError: No slice had room for a lesion.
    """
    from ctpipe.anomaly.lesions import insert_lesions, lesion_profile
    from ctpipe.anomaly.scorer import VAEAnomalyScorer

    hu = np.asarray(volume_hu, dtype=np.float32)
    chosen = list(range(hu.shape[2])) if slices is None else list(slices)
    drawn = lesions.draw(hu[:, :, chosen], spacing)
    if not drawn:
        raise ValueError(f"{name}: no slice has soft tissue with room for a lesion")
    used = sorted({lesion.slice_index for lesion in drawn})
    clean = hu[:, :, chosen][:, :, used]
    local = [_reindex(lesion, used.index(lesion.slice_index)) for lesion in drawn]
    lesioned, mask = insert_lesions(clean, spacing, local)
    scorer = VAEAnomalyScorer(model, **scorer_kwargs)
    before = scorer.score(clean, spacing)
    after = scorer.score(lesioned, spacing)
    scored = after.body & after.fov[:, :, None]
    kinds = np.full(mask.shape, "", dtype="<U5")
    for lesion in local:
        weight = lesion_profile(mask.shape[:2], spacing, lesion) >= 0.5
        kinds[:, :, lesion.slice_index][weight] = lesion.kind
    return LesionTrial(
        name=name,
        lesions=tuple(_reindex(lesion, chosen[used[lesion.slice_index]]) for lesion in local),
        pixel_scores=after.map_hu[scored],
        pixel_labels=mask[scored],
        pixel_kinds=kinds[scored],
        clean_scores=before.neg_elbo,
        lesion_scores=after.neg_elbo,
        clean_p99=_p99(before),
        lesion_p99=_p99(after),
    )


def summarise_trials(trials: Sequence[LesionTrial]) -> dict[str, Any]:
    """Pool trials into pixel and slice AUROCs.

    Returns:
        ``{"pixel": {auroc, auroc_hypo, auroc_hyper, lesion_pixels, normal_pixels},
        "slice": {auroc_neg_elbo, auroc_map_p99, mean_neg_elbo_rise,
        fraction_neg_elbo_rises}, "slices", "lesions", "per_trial"}``. A per-kind AUROC
        scores that kind's lesion pixels against all normal pixels (``None`` when no lesion
        of the kind was drawn). The slice AUROC pools all slices, so it also meets the
        differences between slices; the paired figures compare each slice with itself
        (how often, and by how much, its lesion raised its score).
    """
    scores = np.concatenate([t.pixel_scores for t in trials])
    labels = np.concatenate([t.pixel_labels for t in trials])
    kinds = np.concatenate([t.pixel_kinds for t in trials])
    pixel: dict[str, Any] = {"auroc": auroc(scores, labels)}
    for kind in ("hypo", "hyper"):
        keep = ~labels | (kinds == kind)
        has = bool((labels & (kinds == kind)).any())
        pixel[f"auroc_{kind}"] = auroc(scores[keep], labels[keep]) if has else None
    pixel["lesion_pixels"], pixel["normal_pixels"] = int(labels.sum()), int((~labels).sum())
    clean = np.concatenate([t.clean_scores for t in trials])
    lesioned = np.concatenate([t.lesion_scores for t in trials])
    slice_labels = np.r_[np.zeros(clean.size, bool), np.ones(lesioned.size, bool)]
    p99 = np.r_[
        np.concatenate([t.clean_p99 for t in trials]),
        np.concatenate([t.lesion_p99 for t in trials]),
    ]
    return {
        "pixel": pixel,
        "slice": {
            "auroc_neg_elbo": auroc(np.r_[clean, lesioned], slice_labels),
            "auroc_map_p99": auroc(p99, slice_labels),
            "mean_neg_elbo_rise": float(np.mean(lesioned - clean)),
            "fraction_neg_elbo_rises": float(np.mean(lesioned > clean)),
        },
        "slices": int(clean.size),
        "lesions": int(sum(len(t.lesions) for t in trials)),
        "per_trial": [
            {
                "name": t.name,
                "slices": int(t.clean_scores.size),
                "pixel_auroc": auroc(t.pixel_scores, t.pixel_labels),
                "slice_auroc_neg_elbo": auroc(
                    np.r_[t.clean_scores, t.lesion_scores],
                    np.r_[np.zeros(t.clean_scores.size), np.ones(t.lesion_scores.size)],
                ),
            }
            for t in trials
        ],
    }


def _reindex(lesion: Lesion, k: int) -> Lesion:
    from dataclasses import replace

    return replace(lesion, slice_index=k)


def _p99(result: Any) -> np.ndarray:
    return np.array([row["map_p99_hu"] for row in result.slice_table()])
