"""Test helpers that stand in for outside services (a Kubernetes API server, ...)."""
