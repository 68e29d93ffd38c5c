"""CDK app for clickagg.

`functions/` goes on sys.path here (and in app.py) because infra reads the same
`common.config` the Lambdas read: the ingest Lambda bundles `functions/common` as the
top-level package `common`, so infra must import it under that same name to get one
definition of resource names and environment variables.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))
