"""tests/flink runs in the PyFlink venv: `.venv-flink/bin/python -m pytest tests/flink`."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUNCTIONS = HERE.parents[1] / "functions"
for p in (str(FUNCTIONS), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)
