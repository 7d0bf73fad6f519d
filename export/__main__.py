"""Entry point: ``python -m export [COMMAND]`` (see :mod:`export.cli`)."""

import sys

from .cli import main

sys.exit(main())
