"""Helpers shared by this project's DAG files (not DAGs themselves; see .airflowignore)."""
