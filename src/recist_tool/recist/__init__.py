"""RECIST 1.1 and iRECIST response engine: pure functions over plain dataclasses."""
