"""Collectors: each a small class that measures one kind of target. See ``base.py``."""
