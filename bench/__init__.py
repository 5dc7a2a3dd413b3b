"""Benchmarks: scripts that print numbers (and ratios against peers); no assertions."""
