"""DVID's roi datatype: a set of blocks stored as x-runs (spans); kernels in ``spans``."""
