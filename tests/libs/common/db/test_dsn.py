from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from libs.common.db import Database, DatabaseConfigError, DatabaseUnavailableError
from libs.common.db.dsn import database_url, engine_arguments, render_url, validate_url

SQLITE_FILE = Path("/srv/oneapi/data/one-api.db")
SECRET = "s3cr3t-PW"


def parse(dsn: str) -> dict[str, object]:
    url = database_url(dsn, sqlite_file=SQLITE_FILE)
    return {
        "driver": url.drivername,
        "user": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
        "database": url.database,
        "query": dict(url.query),
    }


# --- SQLite --------------------------------------------------------------------------------


@pytest.mark.parametrize("dsn", ["", "   ", "local"])
def test_empty_dsn_is_the_embedded_sqlite_file(dsn: str) -> None:
    url = database_url(dsn, sqlite_file=SQLITE_FILE)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(SQLITE_FILE)
    assert not SQLITE_FILE.parent.exists()  # created when connecting, not when parsing


def test_sqlite_urls_get_the_async_driver() -> None:
    assert parse("sqlite:///relative/one-api.db")["driver"] == "sqlite+aiosqlite"
    assert parse("sqlite:////abs/one-api.db")["database"] == "/abs/one-api.db"
    assert parse("sqlite+aiosqlite:///x.db")["database"] == "x.db"


@pytest.mark.parametrize("dsn", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://"])
def test_in_memory_sqlite_is_refused(dsn: str) -> None:
    with pytest.raises(DatabaseConfigError, match="in-memory"):
        database_url(dsn, sqlite_file=SQLITE_FILE)


# --- One API's MySQL DSN (Go driver syntax) -----------------------------------------------


def test_go_mysql_dsn_from_the_readme() -> None:
    assert parse("root:123456@tcp(localhost:3306)/oneapi") == {
        "driver": "mysql+aiomysql",
        "user": "root",
        "password": "123456",
        "host": "localhost",
        "port": 3306,
        "database": "oneapi",
        "query": {"charset": "utf8mb4"},
    }


def test_go_only_parameters_are_dropped_and_charset_is_always_utf8mb4() -> None:
    parsed = parse(
        "root:123456@tcp(db:3306)/oneapi?charset=utf8&parseTime=True&loc=Local"
        "&collation=utf8_general_ci&readTimeout=5s&allowNativePasswords=true"
    )
    assert parsed["query"] == {"charset": "utf8mb4"}


def test_go_mysql_dsn_defaults_and_sockets() -> None:
    bare = parse("/oneapi")
    assert (bare["host"], bare["port"], bare["user"], bare["database"]) == (
        "127.0.0.1",
        3306,
        None,
        "oneapi",
    )
    assert parse("u:p@tcp(db)/oneapi")["port"] == 3306
    assert parse("u:p@tcp([::1]:3307)/oneapi")[("host")] == "::1"
    socket = parse("u@unix(/run/mysqld/mysqld.sock)/oneapi")
    assert socket["host"] is None
    assert socket["query"] == {"unix_socket": "/run/mysqld/mysqld.sock", "charset": "utf8mb4"}


def test_go_mysql_password_may_hold_at_signs_colons_and_slashes() -> None:
    # As in go-sql-driver: the last '/' starts the database, the last '@' ends the password.
    parsed = parse("root:p@ss:w/rd@tcp(db:3307)/oneapi")
    assert (parsed["user"], parsed["password"], parsed["host"], parsed["port"]) == (
        "root",
        "p@ss:w/rd",
        "db",
        3307,
    )


def test_go_timeout_becomes_connect_timeout() -> None:
    assert parse("u@tcp(db)/x?timeout=30s")["query"]["connect_timeout"] == "30"  # type: ignore[index]
    assert parse("u@tcp(db)/x?timeout=1m30s")["query"]["connect_timeout"] == "90"  # type: ignore[index]
    assert parse("u@tcp(db)/x?timeout=500ms")["query"]["connect_timeout"] == "1"  # type: ignore[index]


def test_other_go_parameters_are_system_variables_set_on_connect() -> None:
    parsed = parse("u@tcp(db)/x?time_zone=%27%2B00%3A00%27&sql_mode=TRADITIONAL")
    assert parsed["query"] == {
        "charset": "utf8mb4",
        "init_command": "SET time_zone='+00:00', sql_mode=TRADITIONAL",
    }


@pytest.mark.parametrize(
    ("tls", "verify", "check_hostname"),
    [
        ("true", ssl.CERT_REQUIRED, True),
        ("skip-verify", ssl.CERT_NONE, False),
        ("preferred", ssl.CERT_NONE, False),
    ],
)
def test_mysql_tls_becomes_an_ssl_context(tls: str, verify: int, check_hostname: bool) -> None:
    url = database_url(f"root:pw@tcp(db:3306)/oneapi?tls={tls}", sqlite_file=SQLITE_FILE)
    assert url.query["tls"] == tls
    stripped, connect_args = engine_arguments(url)
    assert "tls" not in stripped.query
    context = connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)


def test_asyncpg_timeouts_become_numbers() -> None:
    url = database_url("postgres://u@db/oneapi?connect_timeout=7", sqlite_file=SQLITE_FILE)
    stripped, connect_args = engine_arguments(url)
    assert connect_args == {"timeout": 7.0}
    assert "timeout" not in stripped.query


def test_mysql_tls_files_that_cannot_be_read_are_a_config_error(tmp_path: Path) -> None:
    url = validate_url(f"mysql+aiomysql://u:{SECRET}@db/oneapi?ssl_ca={tmp_path / 'no-ca.pem'}")
    with pytest.raises(DatabaseConfigError, match="cannot load the MySQL TLS files") as caught:
        engine_arguments(url)
    assert SECRET not in str(caught.value)


def test_mysql_tls_false_means_no_tls() -> None:
    url = database_url("root:pw@tcp(db:3306)/oneapi?tls=false", sqlite_file=SQLITE_FILE)
    assert engine_arguments(url)[1] == {}


def test_mysql_url_form() -> None:
    parsed = parse(f"mysql://root:{SECRET}@db:3307/oneapi?parseTime=true")
    assert parsed["driver"] == "mysql+aiomysql"
    assert (parsed["password"], parsed["port"], parsed["database"]) == (SECRET, 3307, "oneapi")
    assert parsed["query"] == {"charset": "utf8mb4"}
    assert parse("mariadb://root@db/oneapi")["driver"] == "mariadb+aiomysql"


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls(scheme: str) -> None:
    assert parse(f"{scheme}://postgres:123456@localhost:5432/oneapi") == {
        "driver": "postgresql+asyncpg",
        "user": "postgres",
        "password": "123456",
        "host": "localhost",
        "port": 5432,
        "database": "oneapi",
        "query": {},
    }


def test_postgres_parameters_are_translated_for_asyncpg() -> None:
    parsed = parse(
        "postgres://u:p@db/oneapi?sslmode=verify-full&connect_timeout=10"
        "&application_name=one-api&TimeZone=Asia/Shanghai"
    )
    assert parsed["query"] == {"ssl": "verify-full", "timeout": "10"}


def test_postgres_password_is_percent_decoded_and_may_hold_at_signs() -> None:
    assert parse("postgres://u:p%40ss%2Fword@db/oneapi")["password"] == "p@ss/word"
    assert parse("postgres://u:p@ss@db/oneapi")["password"] == "p@ss"


def test_postgres_default_port() -> None:
    assert parse("postgres://u@db/oneapi")["port"] == 5432


# --- full SQLAlchemy URLs ------------------------------------------------------------------


def test_async_sqlalchemy_urls_are_used_as_given() -> None:
    given = f"postgresql+asyncpg://u:{SECRET}@db:6543/oneapi?ssl=require&prepared_statement_cache_size=0"
    assert database_url(given, sqlite_file=SQLITE_FILE) == make_url(given)
    mysql = database_url("mysql+aiomysql://u@db/oneapi", sqlite_file=SQLITE_FILE)
    assert mysql.query == {"charset": "utf8mb4"}


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql+psycopg2://u:{SECRET}@db/oneapi",
        f"mysql+pymysql://u:{SECRET}@db/oneapi",
        "sqlite+pysqlite:///x.db",
    ],
)
def test_sync_drivers_are_refused(dsn: str) -> None:
    with pytest.raises(DatabaseConfigError, match="synchronous driver") as caught:
        database_url(dsn, sqlite_file=SQLITE_FILE)
    assert SECRET not in str(caught.value)


# --- errors never show the password --------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        (f"root:{SECRET}@tcp(db:3306)", "no '/dbname'"),
        (f"root:{SECRET}", "no '/dbname'"),
        (f"root:{SECRET}@tcp(db:3306/oneapi", "unclosed"),
        (f"root:{SECRET}@udp(db:3306)/oneapi", "network 'udp'"),
        (f"root:{SECRET}@tcp(db:99999)/oneapi", "invalid port"),
        (f"root:{SECRET}@tcp(db:3306)/", "no database"),
        (f"root:{SECRET}@tcp(db)/oneapi?tls=custom", "tls='custom'"),
        (f"root:{SECRET}@tcp(db)/oneapi?timeout=soon", "timeout='soon'"),
        (f"postgres://u:{SECRET}@db:5432/", "no database"),
        (f"postgres://u:{SECRET}@db:port/oneapi", "invalid port"),
        (f"postgres://u:{SECRET}@db/oneapi?sslmode=maybe", "sslmode='maybe'"),
        (f"postgres://u:{SECRET}@db/oneapi?search_path=other", "'search_path'"),
        (f"postgres://u:{SECRET}@db/oneapi?sslrootcert=/ca.pem", "PGSSLROOTCERT"),
        (f"postgres://u:{SECRET}@h1,h2/oneapi", "several hosts"),
        (f"mssql+aioodbc://u:{SECRET}@db/oneapi", "unsupported database 'mssql'"),
        (f"redis://u:{SECRET}@db/0", "unsupported database 'redis'"),
        (f"postgresql+nosuchdriver://u:{SECRET}@db/oneapi", "unknown driver"),
        (f"postgresql+asyncpg://u:{SECRET}@db", "names no database"),
    ],
)
def test_invalid_dsn_errors_say_why_and_hide_the_password(dsn: str, reason: str) -> None:
    with pytest.raises(DatabaseConfigError) as caught:
        database_url(dsn, sqlite_file=SQLITE_FILE, setting="LOG_SQL_DSN")
    message = str(caught.value)
    assert reason in message
    assert message.startswith("LOG_SQL_DSN")
    assert SECRET not in message
    assert "\n" not in message


def test_render_url_hides_secrets() -> None:
    rendered = render_url(f"postgresql+asyncpg://u:{SECRET}@db/oneapi?sslpassword={SECRET}")
    assert SECRET not in rendered
    assert rendered.startswith("postgresql+asyncpg://u:***@db/oneapi")
    assert render_url("not a url") == "<unparsable database URL>"
    assert SECRET not in repr(Database(f"postgresql+asyncpg://u:{SECRET}@db/oneapi"))


def test_validate_url_accepts_strings_and_urls() -> None:
    url = validate_url("sqlite+aiosqlite:///x.db")
    assert validate_url(url) == url


# --- the translated URLs really connect ----------------------------------------------------


async def test_go_mysql_dsn_connects_with_utf8mb4_and_system_variables(mysql_url: str) -> None:
    server = make_url(mysql_url)
    dsn = (
        f"{server.username}@tcp({server.host}:{server.port})/{server.database}"
        "?charset=utf8&parseTime=True&loc=Local&timeout=5s&time_zone=%27%2B00%3A00%27"
    )
    database = Database(database_url(dsn, sqlite_file=SQLITE_FILE))
    try:
        async with database.session() as session:
            row = (
                await session.execute(
                    text("SELECT @@session.time_zone, @@character_set_connection")
                )
            ).one()
        assert tuple(row) == ("+00:00", "utf8mb4")
    finally:
        await database.dispose()


async def test_postgres_dsn_connects(postgres_url: str) -> None:
    server = make_url(postgres_url)
    dsn = (
        f"postgres://{server.username}@{server.host}:{server.port}/{server.database}"
        "?sslmode=disable&application_name=one-api&connect_timeout=5"
    )
    database = Database(database_url(dsn, sqlite_file=SQLITE_FILE))
    try:
        await database.ping()
        assert database.dialect == "postgresql"
    finally:
        await database.dispose()


async def test_unreachable_database_error_hides_the_password() -> None:
    database = Database(f"postgresql+asyncpg://u:{SECRET}@127.0.0.1:1/oneapi?timeout=2")
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await database.ping()
    finally:
        await database.dispose()
    assert SECRET not in str(caught.value)
    assert "127.0.0.1:1/oneapi" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)  # refused, not a bad argument
