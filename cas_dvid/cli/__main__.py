"""``python -m cas_dvid.cli``."""

import sys

from cas_dvid.cli import main

sys.exit(main())
