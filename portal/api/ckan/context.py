"""What every action function receives besides its parameters."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.api.ckan.params import Params
from portal.core.principal import Principal
from portal.core.settings import Settings
from portal.core.storage import Storage


@dataclass(frozen=True)
class ActionContext:
    """The caller, the database session and the portal's settings for one action call."""

    session: Session
    principal: Principal
    base_url: str
    settings: Settings
    storage: Storage
    ip: str | None


Action = Callable[[ActionContext, Params], Any]
