"""Self-describing checkpoints: the file format and a loader for each kind of model.

* :mod:`ctpipe.checkpoints.file`: the format (weights, record, sha256), save, read, export.
* :mod:`ctpipe.checkpoints.segmenter`: segmenters with their class map and preprocessing.
* :mod:`ctpipe.checkpoints.gan`: DCGAN generator and discriminator with their HU window.

Inference and workflows load models through this package only; nothing here imports the
training code. Nothing is imported here, so importing the package does not load torch.
"""
