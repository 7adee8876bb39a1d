"""The rules that keep web pages from using the card behind the user's back.

Every page the browser opens can send requests to 127.0.0.1, and a DNS-rebinding page can
make its own host name resolve to it. So, for every request on every port:

* the ``Host`` header must name this machine (127.0.0.1, localhost, [::1], or a configured
  extra name) with the port the request came in on: anything else is refused (rebinding);
* an ``Origin``, when sent, must be the service's own (the counter page) or on the
  configured allow-list: anything else is refused, WebSocket upgrades included;
* CORS answers, and Chrome's Private Network Access preflight
  (``Access-Control-Request-Private-Network`` → ``Access-Control-Allow-Private-Network``),
  are given only to allowed origins;
* message size, open WebSocket count and idle time are limited (see ``ServiceConfig``).
Refusals are JSON error objects with a reason, never a silent drop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from sbcard.service.config import LOOPBACK_NAMES, Limits, ServiceConfig

log = logging.getLogger("sbcard.service")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type"


def refusal(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"code": -status, "error": reason, "message": message},
                             status=status)


def local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if sockname else None


def host_allowed(host: str, port: int | None, config: ServiceConfig) -> bool:
    host = host.strip().lower()
    names = {*LOOPBACK_NAMES, *(n.lower() for n in config.extra_host_names)}
    if host in names:                       # no port: only right on port 80
        return port == 80
    name, sep, host_port = host.rpartition(":")
    return bool(sep) and name in names and host_port == str(port)


def own_origins(port: int | None) -> set[str]:
    return {f"http://{name}:{port}" for name in LOOPBACK_NAMES}


def origin_allowed(origin: str, port: int | None, config: ServiceConfig) -> bool:
    return origin in config.allowed_origins or origin in own_origins(port)


def security_middleware(config: ServiceConfig, limits: Limits) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        port = local_port(request)
        host = request.headers.get("Host", "")
        if not host_allowed(host, port, config):
            limits.count_refusal("host")
            log.warning("refused: Host %r on port %s (DNS rebinding?)", host[:80], port)
            return refusal(403, "host_not_allowed",
                           "Host header does not name this machine; refused (DNS rebinding "
                           "protection). Call the service as 127.0.0.1 or localhost.")
        origin = request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, port, config):
            limits.count_refusal("origin")
            log.warning("refused: Origin %r not on the allow-list", origin[:120])
            return refusal(403, "origin_not_allowed",
                           f"Origin {origin[:120]} is not on the service's allow-list "
                           "(allowed_origins in the [service] configuration).")
        if request.method == "OPTIONS":
            return preflight(request, origin)
        response = await handler(request)
        if origin is not None and not response.prepared:
            add_cors(response, origin)
        return response

    return guard


def add_cors(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"


def preflight(request: web.Request, origin: str | None) -> web.Response:
    """CORS preflight for an allowed origin, with Chrome's Private Network Access answer."""
    if origin is None or "Access-Control-Request-Method" not in request.headers:
        return refusal(400, "bad_preflight", "OPTIONS is only a CORS preflight here")
    response = web.Response(status=204)
    add_cors(response, origin)
    response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
        response.headers["Access-Control-Allow-Private-Network"] = "true"
    return response
