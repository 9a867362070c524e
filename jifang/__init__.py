"""jifang's shared core: domain types, tier policy, configuration, catalog database and object-store port.

Every part (edge, recorder, retention, recognition, dashboard) imports from here; none reaches into another
part's internals.
"""

__version__ = "0.1.0"
