"""``python -m tickpub``: the same as the ``tickpub`` command."""

import sys

from tickpub.cli import main

if __name__ == "__main__":
    sys.exit(main())
