"""Dataset groups: the 17 e-Stat categories."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.models import Group
from portal.catalog.views import GroupPublic


def list_groups(session: Session) -> list[GroupPublic]:
    """Return every group in e-Stat order (groups are public; no visibility applies)."""
    rows = session.execute(select(Group).order_by(Group.id)).scalars()
    return [GroupPublic(g.name, g.title, g.title_en) for g in rows]
