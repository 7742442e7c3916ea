"""``python -m fastl2tp`` is the ``fastl2tp`` command."""

import sys

from .cli import main

sys.exit(main())
