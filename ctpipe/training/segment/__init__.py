"""Segmenter training: :mod:`.config` (the YAML), :mod:`.data` (labelled cases), :mod:`.trainer`.

Nothing is imported here, so importing the package does not load torch.
"""
