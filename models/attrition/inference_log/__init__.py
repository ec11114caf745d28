"""The inference log: one record per scored row, kept as a Delta table (delta-rs, no JVM).

The record's columns (``schema``), how an employee id becomes a stored key (``keys``) and how the
table is appended to and read (``table``) are defined here once; the server's writer, the batch job
and the outcomes report all go through them.
"""

from attrition.inference_log.keys import (
    ENTITY_COLUMNS,
    ENTITY_INPUT,
    ENTITY_KEY_ENV,
    EntityKeyMissing,
    entity_hasher,
    hash_entities,
)
from attrition.inference_log.schema import COLUMNS, LOG_SCHEMA, PARTITION_BY
from attrition.inference_log.table import append, read

__all__ = [
    "COLUMNS",
    "ENTITY_COLUMNS",
    "ENTITY_INPUT",
    "ENTITY_KEY_ENV",
    "LOG_SCHEMA",
    "PARTITION_BY",
    "EntityKeyMissing",
    "append",
    "entity_hasher",
    "hash_entities",
    "read",
]
