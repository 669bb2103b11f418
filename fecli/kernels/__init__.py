"""Numba kernels: the hot loops of fecli. No Click, no Rich, no I/O here."""
