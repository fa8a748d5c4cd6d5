"""``python -m npae``: the command line (see :mod:`npae.cli`)."""

import sys

from .cli.parser import main

sys.exit(main())
