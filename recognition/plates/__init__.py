"""Licence plates (issue #5 item 3): GA 36-2018 validation, synthetic renders for tests, and the reader."""

from jifang.recognition.plates.ga36 import normalize, problem

__all__ = ["normalize", "problem"]
