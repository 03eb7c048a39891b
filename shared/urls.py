"""URLs with credentials in them: the passwords they carry, a copy safe to print, and a Redis URL
given the service's user and password file (no redis-py here: the configuration uses it)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from shared.logs import register_secret


def _user_info(url: str) -> tuple[str, str, str] | None:
    """(scheme, user info, the rest) of `scheme://userinfo@rest`, the user info up to the URL's
    last `@`: a password with `#`, `/`, `?` or `@` not percent-encoded still counts whole as the
    password (urlsplit would cut it there and show the rest as a path or fragment). None: no `@`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    info, _, rest = rest.rpartition("@")
    return scheme, info, rest


def url_passwords(url: str) -> list[str]:
    """Every password a URL carries: in the user info and in a `password=` query."""
    found = []
    split = _user_info(url)
    if split is not None and ":" in split[1]:
        password = split[1].split(":", 1)[1]
        found += [password, unquote(password)] if unquote(password) != password else [password]
    try:
        query = urlsplit(url).query
    except ValueError:
        return [f for f in found if f]
    found += [v for k, v in parse_qsl(query) if k.lower() == "password" and v]
    return [f for f in found if f]


# Schemes whose clients read a lone user info (`scheme://x@host`) as the password; elsewhere
# (postgresql://automata@host/db) it is the user name, shown.
LONE_INFO_IS_PASSWORD = frozenset({"redis", "rediss", "unix"})


def safe_url(url: str) -> str:
    """The URL with any password replaced, for logs: `user:pw@`, `:pw@` and `?password=` of
    any URL (redis://, rediss://, unix://, postgresql://...). A URL that does not parse (one
    without `://` included: `user:pw@host` reads as scheme `user`) is hidden whole."""
    if "://" not in url:
        return "<unparsable url>"
    split = _user_info(url)
    if split is not None:
        scheme, info, rest = split
        if ":" in info:
            url = f"{scheme}://{info.split(':', 1)[0]}:***@{rest}"
        elif scheme.lower() in LONE_INFO_IS_PASSWORD:  # `redis://secret@host`: redis-py's reading
            url = f"{scheme}://:***@{rest}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "<unparsable url>"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "?" + urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{query}{fragment}"


# -- a Redis URL with the service's own user (shared/redis_acl.py) -----------------------------

USER_ENV = "REDIS_USER"
PASSWORD_FILE_ENV = "REDIS_PASSWORD_FILE"


class RedisCredentialsError(ValueError):
    """REDIS_PASSWORD_FILE cannot be read (the message names the file)."""


def with_credentials(url: str, env: Mapping[str, str]) -> str:
    """`url` as REDIS_USER with REDIS_PASSWORD_FILE's password (when set); every password the
    URL ends up with is registered for log masking."""
    user, password_file = env.get(USER_ENV), env.get(PASSWORD_FILE_ENV)
    if user or password_file:
        parts = urlsplit(url)
        old_user = parts.username or ""
        password = parts.password or ""
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as fh:
                    password = fh.read().strip()
            except OSError as exc:
                raise RedisCredentialsError(
                    f"{PASSWORD_FILE_ENV}: {password_file}: cannot read: {exc.strerror}"
                ) from None
        creds = quote(user or old_user, safe="") + (":" + quote(password, safe="") if password else "")
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit(parts._replace(netloc=f"{creds}@{host}" if creds else host))
    for secret in url_passwords(url):
        register_secret(secret)
    return url
