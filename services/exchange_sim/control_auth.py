"""Who may use the control API: it can reset the venue, set any balance and move the market, so
it must not be open to whoever reaches the exchange API.

With a token (SIM_CONTROL_TOKEN or SIM_CONTROL_TOKEN_FILE) every control request must carry it,
in `X-Automata-Control: <token>` or `Authorization: Bearer <token>`, compared in constant time;
from anywhere. Without one (the default: `automata run`, the tests) only loopback clients are
answered, so a venue bound to 0.0.0.0 for the compose network (docker-compose.yml) keeps its
control API to its own container. Loopback is not quite enough against a browser on the same
machine: a page may POST to 127.0.0.1 (CSRF) or rebind its own name to it (DNS rebinding), so a
tokenless request must also name a loopback Host and carry no cross-site Origin.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

TOKEN_HEADER = "X-Automata-Control"
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def refusal(request: web.Request, token: str) -> tuple[int, str] | None:
    """(status, why) when this request may not use the control API; None when it may."""
    if token:
        given = request.headers.get(TOKEN_HEADER) or _bearer(request.headers.get("Authorization", ""))
        if given and hmac.compare_digest(_bytes(given), _bytes(token)):
            return None
        return 401, f"control API: a token is required ({TOKEN_HEADER} header or Authorization: Bearer)"
    if not is_loopback(request.remote):
        return 403, (
            "control API: answered to loopback clients only; set SIM_CONTROL_TOKEN (or "
            "SIM_CONTROL_TOKEN_FILE) on the venue to use it from elsewhere with a token"
        )
    host = request.headers.get("Host")
    if host is not None and not is_loopback_host(host):
        return 403, f"control API: Host {host[:100]!r} is not a loopback name (DNS rebinding?)"
    if "Origin" in request.headers or request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return 403, "control API: no requests from web pages"
    return None


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ::ffff:127.x (a dual-stack socket's IPv4 peers)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """A Host header naming this machine's loopback: localhost, 127.x.y.z or [::1], any port."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8800
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in LOOPBACK_NAMES or is_loopback(name)


def _bearer(value: str) -> str:
    scheme, _, credentials = value.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
