"""`python -m fastce ...` is the `fastce` command (see fastce.cli)."""
import sys

from fastce.cli import main

sys.exit(main())
