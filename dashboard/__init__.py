"""Dashboard: web UI and REST API for technicians, grid workers and supervisors (issue #6)."""
