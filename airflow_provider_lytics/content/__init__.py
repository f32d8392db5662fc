"""Content for the Lytics Content Affinity Engine: read and check documents, import them one request each.

Nothing here imports Airflow at module level; :mod:`airflow_provider_lytics.operators.content` wires these pieces
to connections, the task context and XCom.
"""
