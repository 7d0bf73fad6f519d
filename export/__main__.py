"""Entry point: ``python -m export``."""

import sys

from .cli import main

sys.exit(main())
