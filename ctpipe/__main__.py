"""Allow ``python -m ctpipe``."""

import sys

from ctpipe.cli import main

sys.exit(main())
