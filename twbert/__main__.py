"""`python -m twbert ...` (and `torchrun -m twbert train ...`) is the `twbert` command."""

import sys

from twbert.cli import main

sys.exit(main())
