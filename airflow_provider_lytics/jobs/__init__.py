"""Pure helpers for Lytics jobs as code: the declarative spec, drift comparison and status classification.

Nothing here talks to Lytics; operators, sensors and triggers combine these with the hooks.
"""
