"""Example programs, shipped inside the package so they run from any install:
``python -m fsmio.examples.<name>``."""
