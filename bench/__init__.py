"""``make bench``: nightclerk against the limit and against what users would build instead (see run.py)."""
