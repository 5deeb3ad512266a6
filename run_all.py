#!/usr/bin/env python3
"""Run the whole benchmark with sensible defaults and write the report.

    python run_all.py                       # quick profile, every task, real data when present
    python run_all.py --profile smoke       # synthetic data, minutes
    python run_all.py --data-root D --tasks classification

Takes the options of ``benchsuite run`` (see ``python run_all.py --help``).
"""

import sys

from benchsuite.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]], script="run_all.py"))
