"""Prometheus and Alertmanager: queries, alert states, rule files."""
