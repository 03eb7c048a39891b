"""URLs with credentials in them: the passwords they carry, and a copy safe to print."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit


def url_passwords(url: str) -> list[str]:
    """Every password a URL carries: in the user info and in a `password=` query."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return found


def safe_url(url: str) -> str:
    """The URL with any password replaced, for logs: `user:pw@`, `:pw@` and `?password=` of
    any URL (redis://, rediss://, unix://, postgresql://...). A URL that does not parse is hidden whole."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:  # `redis://secret@host`: redis-py takes a lone user info as the password
        creds, host = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0] if ':' in creds else ''}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "?" + urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}{fragment}"
