"""Turn `SQL_DSN` / `LOG_SQL_DSN` into an async SQLAlchemy URL.

Accepted forms (`database_url`):

====================================================  ===========================================
given                                                 becomes
====================================================  ===========================================
``""`` or ``local``                                   ``sqlite+aiosqlite:///<SQLITE_PATH>``
``root:pw@tcp(host:3306)/db?tls=true``  (Go MySQL)    ``mysql+aiomysql://root:pw@host:3306/db``
``user@unix(/run/mysqld/mysqld.sock)/db``             ``mysql+aiomysql://user@/db?unix_socket=..``
``mysql://u:pw@host/db``, ``mariadb://...``           ``mysql+aiomysql://...``, ``mariadb+aiomysql``
``postgres://u:pw@host:5432/db?sslmode=disable``      ``postgresql+asyncpg://...?ssl=disable``
``postgresql://...``                                  same as ``postgres://``
``sqlite:///relative.db``, ``sqlite:////abs.db``      ``sqlite+aiosqlite:///...``
``<backend>+<async driver>://...``                    used as given (charset forced on MySQL)
====================================================  ===========================================

Decisions:

* Like One API, anything that is not a URL is a Go MySQL DSN
  (``[user[:password]@][net[(addr)]]/dbname[?params]``, parsed as go-sql-driver does: the last
  ``/`` starts the database name, the last ``@`` before it ends the credentials).
* ``local`` (used by One API forks for "the embedded SQLite") means the default SQLite file.
* MySQL always talks ``utf8mb4``. Go-driver-only parameters (``parseTime``, ``loc``,
  ``charset``, ``collation``, ``readTimeout``, ...) are dropped; ``timeout`` becomes
  ``connect_timeout``; ``tls`` (``true``, ``skip-verify``, ``preferred``, ``false``) is kept and
  turned into an SSL context by `engine_arguments`; any other parameter of a Go DSN is a MySQL
  system variable, set on every new connection like the Go driver does (``SET name=value``).
* PostgreSQL ``sslmode`` maps onto asyncpg's ``ssl`` (same six modes), ``connect_timeout`` onto
  ``timeout``; ``application_name``, ``TimeZone`` and pgx pool parameters are dropped (timestamps
  are epoch integers here). Certificate files go in ``PGSSLROOTCERT`` / ``PGSSLCERT`` /
  ``PGSSLKEY``, which asyncpg reads. Any other parameter (``search_path``, ...) is refused rather
  than silently ignored, since ignoring it could put the tables somewhere else.
* In-memory SQLite is refused: every pooled connection would see its own empty database.
* Only async drivers of SQLite, PostgreSQL and MySQL/MariaDB are accepted; a sync driver
  (``postgresql+psycopg2``, ``mysql+pymysql``) is a `DatabaseConfigError`.

No message raised here contains the password: errors describe the problem, never echo the DSN.
"""

from __future__ import annotations

import math
import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from libs.common.db.errors import DatabaseConfigError

__all__ = ["database_url", "engine_arguments", "render_url", "validate_url"]

SUPPORTED_BACKENDS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_MYSQL_CHARSET = "utf8mb4"

# go-sql-driver parameters with no aiomysql meaning (or one this project fixes itself).
_GO_MYSQL_ONLY = frozenset(
    {
        "allowAllFiles", "allowCleartextPasswords", "allowFallbackToPlaintext",
        "allowNativePasswords", "allowOldPasswords", "charset", "checkConnLiveness",
        "clientFoundRows", "collation", "columnsWithAlias", "connectionAttributes",
        "interpolateParams", "loc", "maxAllowedPacket", "multiStatements", "parseTime",
        "readTimeout", "rejectReadOnly", "serverPubKey", "timeTruncate", "writeTimeout",
    }
)  # fmt: skip
_MYSQL_TLS_MODES = frozenset({"true", "false", "skip-verify", "preferred"})
_MYSQL_SSL_PARAMS = (
    "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher", "ssl_check_hostname",
)  # fmt: skip
_SYSTEM_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_PG_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_PG_DROPPED = frozenset(
    {
        "application_name", "fallback_application_name", "TimeZone", "timezone",
        "binary_parameters", "default_query_exec_mode", "statement_cache_capacity",
        "description_cache_capacity", "pool_max_conns", "pool_min_conns",
        "pool_max_conn_lifetime", "pool_max_conn_idle_time", "pool_health_check_period",
        "pool_max_conn_lifetime_jitter",
    }
)  # fmt: skip
_PG_KEPT = frozenset({"host", "port", "target_session_attrs", "krbsrvname", "gsslib"})
_PG_CERT_FILES = {"sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY"}

_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


def database_url(dsn: str, *, sqlite_file: Path, setting: str = "SQL_DSN") -> URL:
    """The async SQLAlchemy URL for a One API DSN (see the module docstring for the forms).

    `sqlite_file` is used when `dsn` is empty or ``local``; its directory is created when the
    first connection opens, not here. `setting` names the variable in error messages.
    Raises DatabaseConfigError, whose message never contains the password.
    """
    dsn = dsn.strip()
    if dsn in ("", "local"):
        return URL.create("sqlite+aiosqlite", database=str(sqlite_file))
    match = _SCHEME.match(dsn)
    if match is None:
        return validate_url(_parse_go_mysql_dsn(dsn, setting), setting=setting)
    scheme = match["scheme"].lower()
    if scheme in ("postgres", "postgresql"):
        return validate_url(_parse_postgres_url(dsn, setting), setting=setting)
    if scheme in ("mysql", "mariadb"):
        url = _parse_url(dsn, setting).set(drivername=f"{scheme}+aiomysql")
        return validate_url(_without_go_mysql_params(url), setting=setting)
    if scheme == "sqlite":
        return validate_url(
            _parse_url(dsn, setting).set(drivername="sqlite+aiosqlite"), setting=setting
        )
    if "+" in scheme:
        return validate_url(_parse_url(dsn, setting), setting=setting)
    raise DatabaseConfigError(
        f"{setting} names an unsupported database {scheme!r}: use MySQL, PostgreSQL or SQLite"
    )


def validate_url(url: URL | str, *, setting: str = "database URL") -> URL:
    """Check a full SQLAlchemy URL: supported backend, async driver that is installed, a file
    (not in-memory) SQLite database. MySQL URLs get ``charset=utf8mb4``. Returns the URL."""
    if isinstance(url, str):
        url = _parse_url(url.strip(), setting)
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseConfigError(
            f"{setting} names an unsupported database {backend!r}: use MySQL, PostgreSQL or SQLite"
        )
    try:
        dialect_cls = url.get_dialect()
    except NoSuchModuleError:
        raise DatabaseConfigError(f"{setting} names an unknown driver {url.drivername!r}") from None
    async_dialect_cls = dialect_cls.get_async_dialect_cls(url)
    if not getattr(async_dialect_cls, "is_async", False):
        raise DatabaseConfigError(
            f"{setting} uses the synchronous driver {url.drivername!r}; use an async one "
            "(sqlite+aiosqlite, postgresql+asyncpg, mysql+aiomysql)"
        )
    try:
        async_dialect_cls.import_dbapi()
    except ImportError:
        raise DatabaseConfigError(
            f"{setting} uses the driver {url.drivername!r}, which is not installed"
        ) from None
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise DatabaseConfigError(
                f"{setting} names an in-memory SQLite database; give a file path"
            )
    elif not url.database:
        raise DatabaseConfigError(f"{setting} names no database")
    if backend in ("mysql", "mariadb"):
        url = url.update_query_dict({"charset": _MYSQL_CHARSET})
    return url


def render_url(url: URL | str) -> str:
    """`url` for logs and messages: the password, and query values that look like secrets,
    are replaced by ``***``. An unparsable string is not echoed."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            return "<unparsable database URL>"
    hidden = {key: "***" for key in url.query if "pass" in key.lower() or "secret" in key.lower()}
    if hidden:
        url = url.update_query_dict(hidden)
    return url.render_as_string(hide_password=True)


def engine_arguments(url: URL) -> tuple[URL, dict[str, Any]]:
    """Split `url` into what SQLAlchemy reads from the URL and the driver's `connect_args`.

    aiomysql wants an `ssl.SSLContext`, which a URL cannot carry: ``tls`` and SQLAlchemy's
    ``ssl_*`` parameters are taken out of the query and become one. (aiomysql uses TLS only
    when the server offers it, so even ``tls=true`` cannot refuse a plaintext server.)
    asyncpg wants ``timeout`` and ``command_timeout`` as numbers.
    """
    backend = url.get_backend_name()
    if backend == "postgresql" and url.get_driver_name() == "asyncpg":
        return _asyncpg_arguments(url)
    if backend not in ("mysql", "mariadb"):
        return url, {}
    tls_params: dict[str, str] = {}
    for key in ("tls", *_MYSQL_SSL_PARAMS):
        value = url.query.get(key)
        if isinstance(value, tuple):
            raise DatabaseConfigError(f"the MySQL URL gives {key} more than once")
        if value is not None:
            tls_params[key] = value
    url = url.difference_update_query(tls_params)
    context = _mysql_ssl_context(tls_params.pop("tls", None), tls_params)
    return url, ({"ssl": context} if context is not None else {})


def _asyncpg_arguments(url: URL) -> tuple[URL, dict[str, Any]]:
    """asyncpg wants its timeouts as numbers; URL query values are strings."""
    connect_args: dict[str, Any] = {}
    for name in ("timeout", "command_timeout"):
        value = url.query.get(name)
        if value is None:
            continue
        try:
            connect_args[name] = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DatabaseConfigError(f"the PostgreSQL URL has a non-numeric {name}") from None
    return url.difference_update_query(connect_args), connect_args


# --- parsers ---------------------------------------------------------------------------------


def _parse_url(dsn: str, setting: str) -> URL:
    try:
        return make_url(dsn)
    except (ArgumentError, ValueError):
        raise DatabaseConfigError(f"{setting} is not a valid database URL") from None


def _split_host_port(address: str, default_port: int, setting: str) -> tuple[str | None, int]:
    if not address:
        return None, default_port
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise DatabaseConfigError(f"{setting} has an invalid IPv6 address")
        port_text = rest[1:]
    elif address.count(":") > 1:
        host, port_text = address, ""  # a bare IPv6 address
    else:
        host, _, port_text = address.partition(":")
    if not port_text:
        return host or None, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DatabaseConfigError(f"{setting} has an invalid port {port_text!r}")
    return host or None, int(port_text)


def _parse_query(query: str, setting: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise DatabaseConfigError(f"{setting} has malformed parameters after '?'") from None
    return dict(pairs)


def _parse_go_mysql_dsn(dsn: str, setting: str) -> URL:
    form = "user:password@tcp(host:3306)/dbname"
    slash = dsn.rfind("/")
    if slash < 0:
        raise DatabaseConfigError(
            f"{setting} is neither a URL nor a MySQL DSN like {form}: no '/dbname' found"
        )
    head, tail = dsn[:slash], dsn[slash + 1 :]
    database, _, query = tail.partition("?")
    credentials, at, address = head.rpartition("@")
    if not at:
        credentials, address = "", head
    username, _, password = credentials.partition(":")

    network, paren, rest = address.partition("(")
    if paren:
        if not rest.endswith(")"):
            raise DatabaseConfigError(f"{setting} has an unclosed '(' in its address ({form})")
        address = rest[:-1]
    else:
        address = ""
    network = network or "tcp"
    host: str | None
    query_params = _parse_query(query, setting)
    if network in ("tcp", "tcp4", "tcp6"):
        host, port = _split_host_port(address, 3306, setting)
        host = host or "127.0.0.1"
    elif network == "unix":
        host, port = None, 3306
        query_params["unix_socket"] = address or "/tmp/mysql.sock"  # noqa: S108 (Go's default)
    else:
        raise DatabaseConfigError(
            f"{setting} uses the network {network!r}; a MySQL DSN uses tcp or unix ({form})"
        )
    if not database:
        raise DatabaseConfigError(f"{setting} names no database ({form})")

    url = URL.create(
        "mysql+aiomysql",
        username=username or None,
        password=password or None,
        host=host,
        port=port if host is not None else None,
        database=unquote(database),
    )
    return _with_go_mysql_params(url, query_params, setting)


def _with_go_mysql_params(url: URL, params: dict[str, str], setting: str) -> URL:
    kept: dict[str, str] = {}
    system_variables: list[str] = []
    for name, value in params.items():
        if name in _GO_MYSQL_ONLY:
            continue
        if name == "unix_socket":
            kept[name] = value
        elif name == "tls":
            kept["tls"] = _check_mysql_tls(value, setting)
        elif name == "timeout":
            kept["connect_timeout"] = str(max(1, math.ceil(_go_duration(value, setting))))
        elif _SYSTEM_VARIABLE.match(name):
            system_variables.append(f"{name}={value}")
        else:
            raise DatabaseConfigError(f"{setting} has an invalid parameter name {name!r}")
    if system_variables:
        kept["init_command"] = "SET " + ", ".join(system_variables)
    return url.update_query_dict(kept)


def _without_go_mysql_params(url: URL) -> URL:
    """A ``mysql://`` URL copied from a Go config may carry Go-only parameters: drop them."""
    dropped = [name for name in url.query if name in _GO_MYSQL_ONLY]
    return url.difference_update_query(dropped) if dropped else url


def _check_mysql_tls(value: str, setting: str) -> str:
    mode = value.lower()
    if mode in ("1", "yes"):
        mode = "true"
    elif mode in ("0", "no"):
        mode = "false"
    if mode not in _MYSQL_TLS_MODES:
        raise DatabaseConfigError(
            f"{setting} has tls={value!r}; use true, skip-verify, preferred or false "
            "(named Go TLS configs do not exist here; use ssl_ca=... with a mysql:// URL)"
        )
    return mode


def _go_duration(value: str, setting: str) -> float:
    """Seconds in a Go duration such as ``30s``, ``1m30s`` or ``500ms``."""
    text = value.strip()
    position, total = 0, 0.0
    for part in _GO_DURATION_PART.finditer(text):
        if part.start() != position:
            break
        total += float(part[1]) * _GO_DURATION_UNITS[part[2]]
        position = part.end()
    if not text or position != len(text):
        raise DatabaseConfigError(f"{setting} has timeout={value!r}, not a duration like 30s")
    return total


def _parse_postgres_url(dsn: str, setting: str) -> URL:
    parts = urlsplit(dsn)
    credentials, at, address = parts.netloc.rpartition("@")
    if not at:
        credentials, address = "", parts.netloc
    username, _, password = credentials.partition(":")
    if "," in address:
        raise DatabaseConfigError(
            f"{setting} lists several hosts; use postgresql+asyncpg://.../db?host=h1:5432&host=h2:5432"
        )
    host, port = _split_host_port(address, 5432, setting)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise DatabaseConfigError(f"{setting} names no database (postgres://user:pw@host/db)")
    query: dict[str, str] = {}
    for name, value in _parse_query(parts.query, setting).items():
        if name == "sslmode":
            if value not in _PG_SSL_MODES:
                modes = ", ".join(sorted(_PG_SSL_MODES))
                raise DatabaseConfigError(f"{setting} has sslmode={value!r}; use one of {modes}")
            query["ssl"] = value
        elif name == "connect_timeout":
            if not value.isdigit():
                raise DatabaseConfigError(f"{setting} has a non-numeric connect_timeout")
            if int(value) > 0:
                query["timeout"] = value
        elif name in _PG_CERT_FILES:
            raise DatabaseConfigError(
                f"{setting} has {name}: set the environment variable {_PG_CERT_FILES[name]} "
                "to the file instead"
            )
        elif name in _PG_KEPT:
            query[name] = value
        elif name not in _PG_DROPPED:
            raise DatabaseConfigError(f"{setting} has the unsupported parameter {name!r}")
    return URL.create(
        "postgresql+asyncpg",
        username=unquote(username) or None,
        password=unquote(password) or None,
        host=host,
        port=port if host is not None else None,
        database=database,
        query=query,
    )


def _mysql_ssl_context(tls: str | None, params: dict[str, str]) -> ssl.SSLContext | None:
    if tls is not None:
        tls = _check_mysql_tls(tls, "the MySQL URL")
    if tls == "false" or (tls is None and not params):
        return None
    try:
        context = ssl.create_default_context(
            cafile=params.get("ssl_ca"), capath=params.get("ssl_capath")
        )
        if "ssl_cert" in params:
            context.load_cert_chain(params["ssl_cert"], params.get("ssl_key"))
        if "ssl_cipher" in params:
            context.set_ciphers(params["ssl_cipher"])
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or exc
        raise DatabaseConfigError(f"cannot load the MySQL TLS files: {reason}") from None
    check_hostname = params.get("ssl_check_hostname", "true").lower() not in ("false", "0", "no")
    if tls in ("skip-verify", "preferred"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not check_hostname:
        context.check_hostname = False
    return context
