"""`ophsd`: the trainer's command line. The trainer itself is not built yet (issue 4)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("ophsd: the trainer is not built yet; `harnessc check` and `harnessc graph` work today.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
