"""Routes, one module per resource; each route states its access with a dependency of dashboard.security."""
