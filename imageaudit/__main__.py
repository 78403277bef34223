from __future__ import annotations

import sys

from imageaudit.cli import main

sys.exit(main())
