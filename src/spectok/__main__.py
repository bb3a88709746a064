"""``python -m spectok`` (and ``torchrun -m spectok``) runs the command line."""

import sys

from spectok.cli.main import main

sys.exit(main())
