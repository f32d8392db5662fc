"""Transport-independent pieces of the Lytics API client shared by the sync and async hooks.

Everything here is pure Python: connection settings, the retry policy, response-envelope parsing and the
exception model. The hooks in :mod:`airflow_provider_lytics.hooks` add the HTTP transport.
"""
