"""`python -m harnessc.explanations [--markdown] [CODE ...]`."""

import sys

from harnessc.explanations import main

sys.exit(main())
