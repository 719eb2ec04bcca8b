"""``python -m bot`` is the ``grantbot`` command."""

import sys

from bot.cli import main

sys.exit(main())
