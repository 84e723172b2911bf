"""Real peers for the Prometheus source: a fleet exporter, a ``prometheus`` server and a slow proxy."""
