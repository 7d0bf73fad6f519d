"""Entry point: ``python -m train [COMMAND]`` (see :mod:`train.cli`)."""

import sys

from .cli import main

sys.exit(main())
