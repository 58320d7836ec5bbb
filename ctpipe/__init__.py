"""ctpipe: a CT research pipeline on MONAI.

Load DICOM and NIfTI with correct HU and geometry, denoise low-dose CT, segment anatomy
and export derived DICOM, over single studies or whole folders.

Heavy packages (torch, MONAI, SimpleITK) load lazily from the submodules that need them,
so ``import ctpipe`` and ``ctpipe --help`` stay fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
