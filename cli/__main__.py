"""``python -m jifang.cli``: the same as the ``jifang`` command."""

import sys

from jifang.cli.main import main

sys.exit(main())
