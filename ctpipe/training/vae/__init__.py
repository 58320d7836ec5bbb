"""VAE training: :mod:`.config` (the YAML), :mod:`.data` (slices on a grid), :mod:`.trainer`.

Nothing is imported here, so importing the package does not load torch.
"""
