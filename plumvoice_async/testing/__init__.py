"""Test doubles for code that uses plumvoice-async: a Plum API simulator and a fake clock."""

from ._clock import FakeClock

__all__ = ["FakeClock"]
