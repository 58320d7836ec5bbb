"""Anomaly modelling with a VAE trained on normal anatomy.

* :mod:`ctpipe.anomaly.scorer`: :func:`anomaly_volume` / :class:`VAEAnomalyScorer`: a
  per-voxel reconstruction-error map (HU) and a per-slice score (negative ELBO).
* :mod:`ctpipe.anomaly.lesions`: synthetic hypo- and hyper-dense lesions (fixed
  :class:`Lesion`, seeded :class:`RandomLesions`) for evaluation.
* :mod:`ctpipe.anomaly.evaluate`: lesion trials and their pixel and slice AUROCs.
* :mod:`ctpipe.anomaly.auroc`: the AUROC (Mann-Whitney rank statistic).
* :mod:`ctpipe.anomaly.export`: the map as NIfTI, an overlay PNG, a JSON record.

Example:
    >>> from ctpipe.anomaly import anomaly_volume
    >>> from ctpipe.weights import load_default_vae  # doctest: +SKIP
    >>> result = anomaly_volume(ct.hu, load_default_vae(), spacing=ct.spacing)  # doctest: +SKIP
"""

from __future__ import annotations

from ctpipe.anomaly.auroc import auroc
from ctpipe.anomaly.evaluate import LesionTrial, lesion_trial, summarise_trials
from ctpipe.anomaly.export import write_anomaly_nifti, write_anomaly_overlay, write_anomaly_record
from ctpipe.anomaly.lesions import (
    Lesion,
    LesionInsertion,
    RandomLesions,
    insert_lesions,
    lesion_profile,
)
from ctpipe.anomaly.scorer import AnomalyResult, VAEAnomalyScorer, anomaly_volume

__all__ = [
    "AnomalyResult",
    "Lesion",
    "LesionInsertion",
    "LesionTrial",
    "RandomLesions",
    "VAEAnomalyScorer",
    "anomaly_volume",
    "auroc",
    "insert_lesions",
    "lesion_profile",
    "lesion_trial",
    "summarise_trials",
    "write_anomaly_nifti",
    "write_anomaly_overlay",
    "write_anomaly_record",
]
