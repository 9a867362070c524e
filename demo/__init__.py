"""``jifang demo``: everything on one machine with simulated cameras, on embedded defaults."""
