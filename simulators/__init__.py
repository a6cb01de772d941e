"""Simulated devices speaking the real protocols, for tests, benches and the demo.

Not part of what a box installs: the agent never imports this package, only the demo does.
"""
