"""The one SQL predicate that decides which rows a `Principal` may see."""

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from portal.core.principal import Principal, Visibility


def visible_to(
    principal: Principal,
    *,
    visibility: InstrumentedAttribute[str],
    department_id: InstrumentedAttribute[int],
    shares: Table,
    share_key: str,
    key: InstrumentedAttribute[Any],
) -> ColumnElement[bool]:
    """Return a WHERE clause that keeps only the rows `principal` may see.

    `shares` is the table relating a row (by `share_key`) to the departments
    it is shared with.
    """
    if principal.is_site_admin:
        return true()
    clauses: list[ColumnElement[bool]] = [visibility == Visibility.public.value]
    if principal.is_staff:
        clauses.append(visibility == Visibility.internal.value)
        departments = principal.department_ids
        if departments:
            shared = exists(
                select(1).where(
                    shares.c[share_key] == key,
                    shares.c.department_id.in_(departments),
                )
            )
            clauses.append(
                and_(
                    visibility == Visibility.department.value,
                    or_(department_id.in_(departments), shared),
                )
            )
    return or_(*clauses) if clauses else false()
