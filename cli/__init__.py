"""The front door: the ``jifang`` command, one module per command group; the only place that wires the
parts together."""
