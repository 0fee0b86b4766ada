"""Portal settings, read from `PORTAL_`-prefixed environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portal.core.municipality import is_valid_code

DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused outside dev
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/portal"


class Settings(BaseSettings):
    """Everything the portal reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="PORTAL_", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "PORTAL_DATABASE_URL"),
    )
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    data_dir: Path = Path(".data/files")
    public_url: str | None = None
    municipality_code: str = "442020"
    municipality_name: str = "別府市"
    municipality_name_en: str = "Beppu City"
    default_language: Literal["ja", "en"] = "ja"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_connect_timeout: int = Field(default=5, ge=1, le=120)
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    pg_cluster_dir: Path = Path(".data/pg")
    pg_port: int = Field(default=5432, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError(
                f"DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/db), "
                f"got {mask_password(value)!r}"
            )
        return value

    @field_validator("municipality_code")
    @classmethod
    def _valid_municipality_code(cls, value: str) -> str:
        if not is_valid_code(value):
            raise ValueError(
                f"PORTAL_MUNICIPALITY_CODE {value!r} is not a six-digit 全国地方公共団体コード "
                "with a valid check digit (for example 442020 for 別府市)"
            )
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        secret = self.secret_key.get_secret_value()
        if self.env == "prod" and (secret == DEV_SECRET_KEY or len(secret) < 32):
            raise ValueError(
                "PORTAL_SECRET_KEY must be set to a random value of at least 32 characters "
                "when PORTAL_ENV=prod (generate one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        return self

    @property
    def is_dev(self) -> bool:
        """Tell whether the portal runs in development mode."""
        return self.env == "dev"

    @property
    def sqlalchemy_url(self) -> str:
        """Return the database URL with the psycopg 3 driver named."""
        return to_sqlalchemy_url(self.database_url)

    @property
    def safe_database_url(self) -> str:
        """Return the database URL with any password masked, for messages."""
        return mask_password(self.database_url)


def to_sqlalchemy_url(url: str) -> str:
    """Name the psycopg 3 driver in a plain PostgreSQL URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def to_libpq_url(url: str) -> str:
    """Return a URL that libpq and psql accept (no SQLAlchemy driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def mask_password(url: str) -> str:
    """Hide the password part of a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


@lru_cache
def get_settings() -> Settings:
    """Return the settings of this process, read once."""
    return Settings()
