"""Downstream delivery: what reads the result store and the change feed and hands results on."""
