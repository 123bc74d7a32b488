"""Benchmarks of the platform's hot paths against raw DuckDB/SQLite and plain Feast (`python -m bench`)."""
