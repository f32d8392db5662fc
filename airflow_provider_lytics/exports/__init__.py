"""Audience exports: pure building blocks for streaming Lytics audiences out to files.

The modules here know nothing about Airflow operators: :mod:`.scanner` pages an audience with cursor-expiry
restarts, :mod:`.ledger` dedupes members and diffs them against the previous run's state, :mod:`.encoders` and
:mod:`.compress` turn rows into CSV/NDJSON/Parquet bytes (plain, gzip or zip), :mod:`.outputs` chains encoder,
compression, PGP and an atomic destination writer (with splitting), :mod:`.destinations` are local disk, SFTP,
object storage and email, and :mod:`.runner` wires them into one overlapping pipeline.
"""
