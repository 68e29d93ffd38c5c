"""Nightly billing recompute: exact dedup, the IVT verdicts of common/ivt.py (valid / suspect / invalid), hourly totals."""
