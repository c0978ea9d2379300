"""How long `banli demo` takes to seed its company (sim.seed.seed) into a fresh database.

    python bench/seed.py [DATABASE_URL]      # default: a SQLite file in a temporary folder

Target: under 2 s, so a first `banli demo` starts at once. Kept here rather than in a timed unit test:
on a loaded CI machine a 2 s assertion failed at 2.2 s while the same seed takes ~0.5 s when idle.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sim.seed import seed
from storage.db import make_engine, session_scope
from storage.migrate import upgrade

MORNING = datetime(2026, 3, 18, 2, 0, tzinfo=timezone.utc)


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tempfile.mkdtemp()) / 'seed.db'}"
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    with session_scope(engine) as session:
        summary = seed(session, now=MORNING)
    took = time.perf_counter() - started
    print(f"seeded {summary} in {took:.2f} s (target < 2 s): {'met' if took < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
