"""Processes that run background work: the refresh entry points where interpreter tuning is entered."""
