"""``python -m ops``."""

from __future__ import annotations

import logging
import sys

from ops.cli import main

if __name__ == "__main__":
    # Warnings of the app's services (a schedule row it ignores, say) reach the operator;
    # --verbose adds their info lines.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(main())
