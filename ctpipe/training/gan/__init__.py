"""DCGAN training: :mod:`.config`, :mod:`.data` (HU patches), :mod:`.trainer`, :mod:`.history`.

Nothing is imported here, so importing the package does not load torch.
"""
