"""How many everyday messages Banli understands, and how many it would act on wrongly.

Runs the public test set (tests/everyday_messages.tsv) and the set written blind
(tests/held_out_messages.tsv) through tests/test_everyday_messages.py — the real WeCom route, one
message after another, each outcome read back from the reply and the database — and prints, per set,
the share understood and the wrong actions (a follow-up filed at once against another customer or
day than the one meant). Add `--postgres` to run it against the test PostgreSQL and Redis.

    python bench/understanding.py [--postgres] [--set bench/blind_set_2.tsv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("everyday_messages.tsv", "held_out_messages.tsv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="the test PostgreSQL + Redis, not SQLite + fakeredis")
    parser.add_argument("--set", type=Path, help="also measure this new blind set (reported, not held to the target)")
    args = parser.parse_args()
    env = dict(os.environ)
    sets = SETS
    if args.set:
        env["BANLI_EVERYDAY_EXTRA"] = str(args.set.resolve())
        sets = SETS + (args.set.name,)
    if args.postgres:
        env.setdefault("BANLI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
        env.setdefault("BANLI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    with tempfile.TemporaryDirectory() as scratch:
        env["BANLI_EVERYDAY_REPORT"] = str(Path(scratch) / "report")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_everyday_messages.py"], cwd=ROOT, env=env, check=False,
                       stdout=subprocess.DEVNULL)
        for name in sets:
            path = Path(f"{env['BANLI_EVERYDAY_REPORT']}.{name}.json")
            if not path.exists():
                print(f"{name}: no report (the test did not run)")
                continue
            report = json.loads(path.read_text())
            print(f"{name}: {report['understood']}/{report['messages']} understood "
                  f"({report['share']:.1%}), {report['wrong_actions']} wrong actions")
            for miss in report["misses"]:
                print(f"  miss: {miss['said']}  wanted {miss['wanted']}  got {miss['got']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
