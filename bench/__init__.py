"""The benchmark: a bulk variant of the simulated province and a runner that prints the figures.

Not part of the installed tool; run from a clone: `python -m bench.run --urls 1000`.
"""
