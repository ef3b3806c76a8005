"""Evaluations a user can run (``composer eval``): metrics and acceptance tables."""
