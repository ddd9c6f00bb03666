"""The authorization benchmark: `python -m bench` (see bench/README.md)."""
