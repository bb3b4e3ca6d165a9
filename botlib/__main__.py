"""`python -m botlib` is the `botlib` command."""

import sys

from botlib.app.cli import main

sys.exit(main())
