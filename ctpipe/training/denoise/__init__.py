"""Denoiser training: :mod:`.config` (the YAML), :mod:`.data` (paired slices), :mod:`.trainer`.

Nothing is imported here, so importing the package does not load torch.
"""
