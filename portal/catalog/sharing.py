"""Who may see a dataset: its visibility and the departments it is shared with."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.datasets import get_dataset
from portal.catalog.models import Department, dataset_shares
from portal.core.accounts import require_role
from portal.core.principal import Principal, Role, Visibility


@dataclass(frozen=True)
class DatasetAccess:
    """A dataset's visibility and the slugs of the departments it is shared with."""

    name: str
    department_id: int
    visibility: Visibility
    shared_with: list[str]


def dataset_access(session: Session, principal: Principal, name: str) -> DatasetAccess:
    """Return a dataset's visibility and shares (admins of its department only)."""
    dataset = get_dataset(session, principal, name)
    require_role(principal, dataset.department.id, Role.admin, "managing who can see a dataset")
    slugs = session.execute(
        select(Department.slug)
        .join(dataset_shares, dataset_shares.c.department_id == Department.id)
        .where(dataset_shares.c.dataset_id == dataset.id)
        .order_by(Department.id)
    ).scalars()
    return DatasetAccess(dataset.name, dataset.department.id, dataset.visibility, list(slugs))
