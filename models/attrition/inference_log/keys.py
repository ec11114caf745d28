"""Employee ids become stored keys through HMAC-SHA256 with a secret from the environment.

A plain hash of a small id space (employee numbers) is reversed by hashing every candidate; a keyed
hash is not, without the secret. The outcomes report hashes the outcome file's ids with the same
secret, so the join works without the log ever holding a raw id.
"""

from __future__ import annotations

import hashlib
import hmac
import numbers
import os
from collections.abc import Callable, Iterable

from attrition.contract.errors import AttritionError

#: The environment variable that holds the secret (any string; keep it in a secret store).
ENTITY_KEY_ENV = "ATTRITION_ENTITY_KEY"
#: The optional V2 input (and CSV column) that carries the caller's employee ids: never a feature.
ENTITY_INPUT = "employee_id"
#: CSV columns read as employee ids, in order of preference (the IBM data set calls it EmployeeNumber).
ENTITY_COLUMNS = (ENTITY_INPUT, "EmployeeNumber")


class EntityKeyMissing(AttritionError):
    """Entity ids were given but no secret is set: they cannot be stored safely."""


def entity_hasher(secret: str | None = None) -> Callable[[object], str]:
    """A function from an employee id (int or str; ``42`` and ``"42"`` are the same employee) to its
    hex key; the secret defaults to ``$ATTRITION_ENTITY_KEY``."""
    secret = os.environ.get(ENTITY_KEY_ENV, "") if secret is None else secret
    if not secret:
        raise EntityKeyMissing(
            f"employee ids are stored only as keyed hashes: set {ENTITY_KEY_ENV} to a secret "
            "(the same one the outcomes report uses)"
        )
    key = secret.encode()

    def hash_one(entity: object) -> str:
        return hmac.new(key, entity_text(entity).encode(), hashlib.sha256).hexdigest()

    return hash_one


def entity_text(entity: object) -> str:
    """The text an id is hashed as: ``42``, ``"42"``, ``b"42"`` and ``42.0`` (an integer column that
    went through a float, as pandas does to a column with a gap) are the same employee."""
    if isinstance(entity, bytes):
        entity = entity.decode()
    if isinstance(entity, numbers.Real) and not isinstance(entity, numbers.Integral):
        entity = int(entity) if float(entity).is_integer() else entity
    return str(entity).strip()


def hash_entities(entities: Iterable[object], secret: str | None = None) -> list[str]:
    """Each id's key, in order."""
    hash_one = entity_hasher(secret)
    return [hash_one(entity) for entity in entities]
