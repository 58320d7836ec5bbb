"""``python -m ctpipe.training TASK CONFIG``: train under ``torchrun`` as ``ctpipe train`` does.

Example:
    $ torchrun --nproc_per_node 2 -m ctpipe.training denoise CONFIG
"""

import sys

from ctpipe.training.entry import torchrun_main

if __name__ == "__main__":
    sys.exit(torchrun_main())
