import sys

from ophsd.cli import main

sys.exit(main())
