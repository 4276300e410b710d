"""``python -m ftwizard``."""

import sys

from ftwizard.cli import main

sys.exit(main())
