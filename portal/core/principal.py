"""Who is asking (`Principal`) and what they may see (`Visibility`)."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Visibility(StrEnum):
    """Who may see a dataset, resource or layer."""

    public = "public"
    internal = "internal"
    department = "department"


class Role(StrEnum):
    """A staff member's role within one department."""

    viewer = "viewer"
    editor = "editor"
    admin = "admin"


ROLE_RANK = {Role.viewer: 1, Role.editor: 2, Role.admin: 3}


@dataclass(frozen=True)
class Principal:
    """The caller of a domain function: anonymous, a signed-in staff member, or a token."""

    kind: Literal["anonymous", "session", "token", "system"] = "anonymous"
    user_id: int | None = None
    display_name: str = ""
    memberships: dict[int, Role] = field(default_factory=dict)
    is_site_admin: bool = False

    @property
    def is_staff(self) -> bool:
        """Tell whether the caller is a signed-in staff member (session or token)."""
        return self.kind != "anonymous" and self.user_id is not None

    @property
    def department_ids(self) -> list[int]:
        """Return the ids of the departments the caller belongs to."""
        return sorted(self.memberships)

    def has_role(self, department_id: int, role: Role) -> bool:
        """Tell whether the caller holds `role` or higher in a department."""
        held = self.memberships.get(department_id)
        if self.is_site_admin:
            return True
        return held is not None and ROLE_RANK[held] >= ROLE_RANK[role]

    @property
    def label(self) -> str:
        """Return how the caller is named in audit entries and change history."""
        return self.display_name if self.kind != "anonymous" else "anonymous"


ANONYMOUS = Principal()
SYSTEM = Principal(kind="system", display_name="system", is_site_admin=True)
