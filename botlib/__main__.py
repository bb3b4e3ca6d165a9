"""`python -m botlib` is the `botlib` command."""

import sys

from botlib.cli import main

sys.exit(main())
