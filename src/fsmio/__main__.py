"""``python -m fsmio``: the ``fsmio`` command (run, draw, check, trace)."""

import sys

from fsmio.tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
