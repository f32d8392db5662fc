"""Pure building blocks for imports into Lytics: readers, validation, batching, sending, checkpoints, quarantine.

Nothing here imports Airflow at module level; the operators in :mod:`airflow_provider_lytics.operators.imports`
wire these pieces to connections, the task context and XCom.
"""
