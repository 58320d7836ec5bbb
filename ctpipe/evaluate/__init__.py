"""Score denoisers on paired low-dose / normal-dose CT slices; write tables and figures.

The package has one module per step:

* :mod:`ctpipe.evaluate.pairs`: :class:`SlicePair`, a low-dose slice and its reference;
* :mod:`ctpipe.evaluate.run`: :func:`evaluate_denoisers` (every
  method ``hu_2d -> hu_2d`` on every slice, scored against the normal dose) and
  :func:`evaluate_ldct_baselines` (BM3D's sigma chosen on the training split, then "LDCT
  input", "BM3D" and extra methods scored on the test split);
* :mod:`ctpipe.evaluate.report`: :class:`EvaluationResult` (summary, Markdown, JSON) and
  :func:`write_evaluation` (``metrics.csv``, ``metrics_per_slice.csv``, ``metrics.md``,
  ``metrics.json`` and ``figures/*.png``, each written atomically);
* :mod:`ctpipe.evaluate.figure`: :func:`write_comparison_figure` (input, outputs and
  reference over their differences to the reference).

Every public name is importable from ``ctpipe.evaluate`` (imported when first used).

Example:
    >>> import numpy as np
    >>> from ctpipe.evaluate import LDCT_INPUT, SlicePair, evaluate_denoisers, identity
    >>> ref = np.zeros((32, 32), dtype=np.float32)
    >>> pairs = [SlicePair(ref + 20.0, ref, name="s0")]
    >>> result = evaluate_denoisers(pairs, {LDCT_INPUT: identity})
    >>> result.methods
    ['LDCT input']
"""

from ctpipe.lazy import lazy_exports

_EXPORTS = {
    "ctpipe.evaluate.figure": ("DIFF_RANGE_HU", "write_comparison_figure"),
    "ctpipe.evaluate.pairs": ("LDCT_INPUT", "SlicePair", "load_slice_pairs"),
    "ctpipe.evaluate.report": ("METRIC_COLUMNS", "EvaluationResult", "write_evaluation"),
    "ctpipe.evaluate.run": (
        "BM3D",
        "HuFunction",
        "evaluate_denoisers",
        "evaluate_ldct_baselines",
        "identity",
        "spread_indices",
    ),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__ = lazy_exports(__name__, _EXPORTS)
