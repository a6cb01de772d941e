"""BeerFlow Edge: the venue box runtime."""

__version__ = "0.1.0"
