"""Teams on the one aiohttp server: `POST /api/messages` through botbuilder's CloudAdapter.

Guarded here, before botbuilder (4.17, archived upstream): a missing or non-JWT bearer, and any
token the Bot Framework authentication refuses (expired, wrong audience, unknown signing key, a
`serviceurl` claim other than the activity's), is a 401, never a 500; a request without a JSON
Content-Type is a 415 (botbuilder raises KeyError); a body that cannot be read as JSON (an unknown
charset, nesting too deep for the parser) is a 400, whoever sent it, as it is read before any
token is checked; `deliveryMode: expectReplies` is refused (botbuilder fails to serialise it).
Without an app id authentication is off, so only serviceUrls on loopback or in
FRICTIONLOG_TEAMS_SERVICE_URLS are answered. A turn whose event cannot be stored is a 503: the Bot
Connector redelivers.
"""

import base64
import json
import logging
from ipaddress import ip_address
from urllib.parse import urlparse

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter

from adapters.teams.bot import TURN_STARTED, TeamsBot
from bot.pipeline import NotStored
from bot.settings import split_list

log = logging.getLogger(__name__)


def looks_like_jwt(authorization: str) -> bool:
    """`Bearer <header>.<payload>.<signature>` whose header and payload are base64url JSON."""
    scheme, _, token = authorization.partition(" ")
    parts = token.split(".")
    if scheme != "Bearer" or len(parts) != 3:
        return False
    try:
        for part in parts[:2]:
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        return False
    return True


def service_url_allowed(service_url: str, listed: list[str]) -> bool:
    """Without an app id: loopback, or a serviceUrl the admin listed."""
    if service_url.rstrip("/") in {url.rstrip("/") for url in listed}:
        return True
    host = urlparse(service_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def add_teams_routes(app: web.Application, adapter: CloudAdapter, bot: TeamsBot) -> None:
    settings = bot.service.settings
    with_auth = bool(settings.microsoft_app_id)
    listed = split_list(settings.teams_service_urls)

    async def messages(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if with_auth and not looks_like_jwt(authorization):
            return web.json_response({"error": "unauthorized"}, status=401)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        try:
            body = await request.json()
        except (ValueError, LookupError, RecursionError):  # not JSON, an unknown charset, nested too deep
            return web.json_response({"error": "not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "not an activity"}, status=400)
        if body.get("deliveryMode") == "expectReplies":
            return web.json_response({"error": "expectReplies is not supported"}, status=400)
        if not with_auth and not service_url_allowed(str(body.get("serviceUrl") or ""), listed):
            log.warning("refused a Teams activity for a serviceUrl neither on loopback nor listed")
            return web.json_response({"error": "serviceUrl not allowed without an app id"}, status=403)
        token = TURN_STARTED.set(False)
        try:
            return await adapter.process(request, bot)
        except web.HTTPUnauthorized:
            return web.json_response({"error": "unauthorized"}, status=401)
        except NotStored:
            return web.json_response({"error": "not stored; redeliver"}, status=503)
        except Exception as error:
            if not TURN_STARTED.get():  # the token was refused before any turn ran
                log.warning("refused a Teams request: %s", type(error).__name__)
                return web.json_response({"error": "unauthorized"}, status=401)
            log.exception("a Teams turn failed")
            return web.json_response({"error": "failed; redeliver"}, status=500)
        finally:
            TURN_STARTED.reset(token)

    app.router.add_post("/api/messages", messages)
