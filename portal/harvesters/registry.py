"""Harvester kinds by short name, as dotted paths loaded on first use."""

import importlib
from functools import cache

from portal.core.errors import InvalidInput
from portal.harvesters.base import Harvester

KINDS: dict[str, str] = {
    "directory": "portal.harvesters.kinds.directory:DirectoryHarvester",
    "ckan": "portal.harvesters.kinds.ckan:CkanHarvester",
    "dcat": "portal.harvesters.kinds.dcat:DcatHarvester",
    "ogcapi": "portal.harvesters.kinds.ogcapi:OgcApiHarvester",
}


@cache
def harvester_for(kind: str) -> Harvester:
    """Return the harvester of a kind, or refuse an unknown kind with the choices."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown harvest source kind {kind!r}; use one of {', '.join(KINDS)}")
    module_name, _, class_name = KINDS[kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"harvest source kind {kind!r} is not available here") from exc
    harvester: Harvester = getattr(module, class_name)()
    return harvester
