from __future__ import annotations

import sys

from imageaudit.cli.main import main

sys.exit(main())
