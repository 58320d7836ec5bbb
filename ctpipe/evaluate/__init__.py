"""Score denoisers on paired low-dose / normal-dose CT slices; write tables and figures.

The package has one module per step:

* :mod:`ctpipe.evaluate.run`: :class:`SlicePair`, :func:`evaluate_denoisers` (every
  method ``hu_2d -> hu_2d`` on every slice, scored against the normal dose) and
  :func:`evaluate_ldct_baselines` (BM3D's sigma chosen on the training split, then "LDCT
  input", "BM3D" and extra methods scored on the test split);
* :mod:`ctpipe.evaluate.report`: :class:`EvaluationResult` (summary, Markdown, JSON) and
  :func:`write_evaluation` (``metrics.csv``, ``metrics_per_slice.csv``, ``metrics.md``,
  ``metrics.json`` and ``figures/*.png``, each written atomically);
* :mod:`ctpipe.evaluate.figure`: :func:`write_comparison_figure` (input, outputs and
  reference over their differences to the reference).

Every public name is importable from ``ctpipe.evaluate``.

Example:
    >>> import numpy as np
    >>> ref = np.zeros((32, 32), dtype=np.float32)
    >>> pairs = [SlicePair(ref + 20.0, ref, name="s0")]
    >>> result = evaluate_denoisers(pairs, {LDCT_INPUT: identity})
    >>> result.methods
    ['LDCT input']
"""

from ctpipe.evaluate.figure import DIFF_RANGE_HU, write_comparison_figure
from ctpipe.evaluate.report import METRIC_COLUMNS, EvaluationResult, write_evaluation
from ctpipe.evaluate.run import (
    BM3D,
    LDCT_INPUT,
    HuFunction,
    SlicePair,
    evaluate_denoisers,
    evaluate_ldct_baselines,
    identity,
    load_slice_pairs,
    spread_indices,
)

__all__ = [
    "BM3D",
    "DIFF_RANGE_HU",
    "LDCT_INPUT",
    "METRIC_COLUMNS",
    "EvaluationResult",
    "HuFunction",
    "SlicePair",
    "evaluate_denoisers",
    "evaluate_ldct_baselines",
    "identity",
    "load_slice_pairs",
    "spread_indices",
    "write_comparison_figure",
    "write_evaluation",
]
