"""FastAPI dependencies: settings, database sessions and the caller's `Principal`."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from portal.core.principal import ANONYMOUS, Principal
from portal.core.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """Return the app's engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """Yield a session for one request; it commits only when the route asks it to."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


def get_principal(request: Request) -> Principal:
    """Resolve who is calling (sign-in arrives with staff accounts)."""
    return ANONYMOUS


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
