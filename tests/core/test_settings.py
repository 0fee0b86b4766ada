import pytest
from pydantic import ValidationError

from portal.core.municipality import check_digit, is_valid_code, with_check_digit
from portal.core.settings import DEV_SECRET_KEY, Settings, mask_password, to_sqlalchemy_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "PORTAL_ENV", "PORTAL_SECRET_KEY", "PORTAL_MUNICIPALITY_CODE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_point_at_local_postgres_and_beppu() -> None:
    settings = Settings()
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/portal"
    assert settings.municipality_code == "442020"
    assert settings.municipality_name == "別府市"
    assert settings.is_dev


def test_database_url_comes_from_the_unprefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db.example:5433/city")
    settings = Settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:secret@db.example:5433/city"
    assert settings.safe_database_url == "postgresql://u:***@db.example:5433/city"


def test_prefixed_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_MUNICIPALITY_CODE", "402133")
    monkeypatch.setenv("PORTAL_MUNICIPALITY_NAME", "行橋市")
    settings = Settings()
    assert (settings.municipality_code, settings.municipality_name) == ("402133", "行橋市")


def test_production_refuses_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "prod")
    with pytest.raises(ValidationError, match="PORTAL_SECRET_KEY must be set"):
        Settings()
    monkeypatch.setenv("PORTAL_SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ValidationError, match="PORTAL_SECRET_KEY must be set"):
        Settings()


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "prod")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "prod")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "x" * 48)
    assert Settings().env == "prod"


def test_a_non_postgres_url_is_refused_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@localhost/db")
    with pytest.raises(ValidationError, match="must be a PostgreSQL URL") as caught:
        Settings()
    assert "hunter2" not in str(caught.value)


def test_a_municipality_code_with_a_wrong_check_digit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_MUNICIPALITY_CODE", "442021")
    with pytest.raises(ValidationError, match="check digit"):
        Settings()


@pytest.mark.parametrize(
    ("jis", "code"),
    [("44202", "442020"), ("44204", "442046"), ("40213", "402133"), ("22212", "222127")],
)
def test_check_digits_of_known_cities(jis: str, code: str) -> None:
    assert with_check_digit(jis) == code
    assert is_valid_code(code)


def test_check_digit_rejects_non_digits() -> None:
    with pytest.raises(ValueError, match="five digits"):
        check_digit("4420")
    assert not is_valid_code("44202")
    assert not is_valid_code("44202a")


def test_helpers_handle_urls_without_passwords() -> None:
    assert mask_password("postgresql://postgres@127.0.0.1/portal") == (
        "postgresql://postgres@127.0.0.1/portal"
    )
    assert to_sqlalchemy_url("postgres://h/db") == "postgresql+psycopg://h/db"
