"""`python -m npconv ...` runs the `npconv` command (npconv.cli)."""

import sys

from .cli import main

sys.exit(main())
