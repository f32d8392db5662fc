"""Local Lytics emulator: real HTTP API and managed SFTP for offline DAG development and tests."""
