"""MONAI bundles as ctpipe segmenters: check a local bundle folder, run its own pipeline.

* :func:`find_bundle` checks a bundle folder in the MONAI Model Zoo's layout and reads its
  class names (:mod:`ctpipe.bundle.layout`).
* :class:`BundleSegmenter` builds the bundle's network, preprocessing, inferer and
  postprocessing with ``monai.bundle.ConfigParser`` and segments ctpipe's HU volumes,
  labels on the input's grid (:mod:`ctpipe.bundle.segmenter`).

Example:
    >>> bundle = find_bundle("bundles/wholeBody_ct_segmentation")  # doctest: +SKIP
    >>> labels = BundleSegmenter(bundle, sw_device="cuda")(load_ct("ct/"))  # doctest: +SKIP
"""

from ctpipe.bundle.layout import BundleError, SegmentationBundle, find_bundle
from ctpipe.bundle.segmenter import BundleSegmenter

__all__ = ["BundleError", "BundleSegmenter", "SegmentationBundle", "find_bundle"]
