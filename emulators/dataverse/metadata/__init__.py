"""The metadata part of the Web API: ``EntityDefinitions``, ``Attributes``,
``GlobalOptionSetDefinitions``, ``RelationshipDefinitions`` and the option and publish actions.

Tables and columns created here become tables and columns of the data API at once (the schema the
data API runs on is replaced), as they do in Dataverse. See ``emulators/dataverse/README.md``,
"Metadata API".
"""

from emulators.dataverse.metadata.handlers import is_metadata_path, run_metadata

__all__ = ["is_metadata_path", "run_metadata"]
