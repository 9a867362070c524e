"""Dashboard: web UI and REST API for technicians, grid workers and supervisors (issue #6).

``dashboard.app.create_app(settings)`` builds the FastAPI application; ``jifang dashboard`` serves it.
"""
