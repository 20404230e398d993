"""``python -m wfrun_client``: the ``wfrun-client`` command."""

import sys

from wfrun_client.cli import main

sys.exit(main())
