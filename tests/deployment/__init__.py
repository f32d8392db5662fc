"""The deployment suite: a real Airflow 3 deployment driven through REST, the CLI and a browser."""
