"""Hostile and careless uses of every command: the probe table of ``sar_studies.hostile_inputs``, run and counted.

Every probe runs ``python cli.py ...`` in a subprocess, in a fresh copy of a tiny generated dataset
with a random-weight SAR checkpoint, a scene and a folder of the user's own files; after it, every
file that was there before is hashed again. Prints a Markdown table (probe, command, outcome, the
error line or what went wrong) and the counts: probes / clear errors / raw crashes / silent wrong
results / data lost. Probes another change fixes say so.

    python benchmarks/hostile_inputs.py [--jobs 2] [--keep DIR] [--json results.jsonl]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from sar_studies.hostile_inputs import PROBES, as_json, make_base, run_probes, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="probes run side by side")
    parser.add_argument("--keep", type=Path, default=None, help="keep every probe's folder here")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON lines")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        folder = args.keep or Path(scratch)
        base = make_base(folder / "base")
        results = run_probes(PROBES, base, folder / "probes", jobs=args.jobs, keep=args.keep is not None)
    print(table(results))
    print(f"{len(results)} probes in {time.perf_counter() - started:.0f} s, {args.jobs} at a time")
    if args.json:
        args.json.write_text(as_json(results) + "\n")


if __name__ == "__main__":
    main()
