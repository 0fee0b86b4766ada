"""What the catalog says about a layer: the visible datasets it belongs to and their licences."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.licenses import get_license
from portal.catalog.models import Dataset, Resource
from portal.catalog.views import dataset_visible, resource_visible
from portal.core.errors import InvalidInput
from portal.core.principal import Principal


@dataclass(frozen=True)
class LayerDataset:
    """A dataset that publishes a layer, with the licence the layer is offered under."""

    name: str
    title: str
    license_id: str
    license_title: str
    license_url: str
    attribution: str
    modified_at: datetime


def datasets_by_layer(session: Session, principal: Principal) -> dict[str, LayerDataset]:
    """Map layer ids to the first visible dataset (by name) that offers them as a resource."""
    statement = (
        select(Resource.layer_id, Dataset)
        .join(Dataset, Dataset.id == Resource.dataset_id)
        .where(Resource.layer_id.is_not(None), dataset_visible(principal))
        .where(resource_visible(principal))
        .order_by(Resource.layer_id, Dataset.name)
    )
    found: dict[str, LayerDataset] = {}
    for layer_id, dataset in session.execute(statement):
        if layer_id is not None and layer_id not in found:
            found[layer_id] = _describe(dataset)
    return found


def _describe(dataset: Dataset) -> LayerDataset:
    try:
        licence = get_license(dataset.license_id)
        title, url, attribution = licence.title, licence.url, licence.attribution
    except InvalidInput:
        title, url, attribution = dataset.license_id, "", ""
    return LayerDataset(
        name=dataset.name,
        title=dataset.title,
        license_id=dataset.license_id,
        license_title=title,
        license_url=url,
        attribution=attribution,
        modified_at=dataset.modified_at,
    )
