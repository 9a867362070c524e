"""Recognition: plate and face pipelines, watchlists and incident reports (issue #5)."""
