"""``python -m classic_cnns``: the same as the ``classic-cnns`` command.

Distributed strategies that start their processes by running the command again (Lightning's
``ddp`` on CPU, torchrun) can start it this way on every platform.
"""

import sys

from classic_cnns.cli import main

sys.exit(main())
