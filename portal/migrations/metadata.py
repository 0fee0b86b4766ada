"""All table definitions, imported so that Alembic sees the whole `portal` schema."""

from portal.catalog import models as catalog_models
from portal.core import models as core_models
from portal.core.database import PORTAL_SCHEMA, Base
from portal.geo import models as geo_models
from portal.harvesters import models as harvest_models

__all__ = [
    "PORTAL_SCHEMA",
    "Base",
    "catalog_models",
    "core_models",
    "geo_models",
    "harvest_models",
]

target_metadata = Base.metadata
