"""Provisioning of the connector's Dataverse schema (``python -m provisioning``).

An operator tool, never deployed with the Functions app: it reads ``infra/dynamics/schema.json``,
compares it with what the environment's metadata API reports, and creates or changes the global
choices, tables, columns and lookups the connector needs. See ``provisioning/README.md``.
"""
