"""``python -m classic_cnns.bench``: the same as ``classic-cnns bench``."""

import sys

from classic_cnns.bench import main

sys.exit(main())
