"""`python -m pytest_energy ...`: the command-line tools live in pytest_energy.cli."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
