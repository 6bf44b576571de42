"""Loopback stand-ins for what Teams talks to, each on a thread of its own (botbuilder fetches
signing keys with blocking `requests`).

`Authority`: the Bot Framework's side of authentication. It serves an OpenID configuration and a
JWKS holding its own RS256 key (endorsed for `msteams`), signs channel tokens exactly as the
Bot Connector does (issuer, audience = the bot's app id, `serviceurl` claim), and hands the bot
an access token for its outgoing calls at `/token` (client credentials).

`Connector`: the Bot Connector's serviceUrl. It records every activity the bot sends, checks the
bot's bearer token, and can answer 429 (with Retry-After), 412, 502 or 403 on demand.
"""

import asyncio
import base64
import json
import threading
import time
import uuid
from collections import defaultdict

import jwt
import requests
from aiohttp import web
from botframework.connector.auth import MicrosoftAppCredentials, PasswordServiceClientCredentialFactory
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "8f0c1a2e-0000-4000-8000-000000000001"
APP_PASSWORD = "teams-test-password"
ISSUER = "https://api.botframework.com"


DROP = -1  # a fault that answers nothing: the connection is closed (a reset, a proxy going away)


class _Server:
    """An aiohttp app on 127.0.0.1, port 0, on its own thread and loop."""

    def __init__(self):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()

        async def start() -> None:
            app = web.Application()
            self.routes(app)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Authority(_Server):
    def __init__(self):
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "frictionlog-test-key"
        self.issued: set[str] = set()  # access tokens handed to the bot

    def routes(self, app: web.Application) -> None:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
            "endorsements": ["msteams"],
        }

        async def openid(_request):
            return web.json_response(
                {"issuer": ISSUER, "jwks_uri": f"{self.url}/keys", "id_token_signing_alg_values_supported": ["RS256"]}
            )

        async def keys(_request):
            return web.json_response({"keys": [jwk]})

        async def token(request):
            form = await request.post()
            if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
                return web.json_response({"error": "invalid_client"}, status=401)
            issued = f"bot-token-{uuid.uuid4().hex}"
            self.issued.add(issued)
            return web.json_response({"access_token": issued, "token_type": "Bearer", "expires_in": 3600})

        app.router.add_get("/openid", openid)
        app.router.add_get("/keys", keys)
        app.router.add_post("/token", token)

    def __enter__(self):
        super().__enter__()
        # botbuilder keeps signing keys per metadata URL for a day, process-wide: an earlier test's
        # authority on the same loopback port would have its key trusted instead of this one's.
        JwtTokenExtractor.metadataCache.pop(self.metadata_url, None)
        return self

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/openid"

    def token(self, service_url: str, *, audience: str = APP_ID, expires_in: int = 3600, key=None) -> str:
        """A channel token as the Bot Connector signs it for one activity."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + expires_in,
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})


class LoopbackCredentials(MicrosoftAppCredentials):
    """The bot's outgoing token from the Authority's /token (client credentials), as MSAL gets it
    from Entra in production (MSAL itself insists on https and on Microsoft's instance discovery)."""

    def __init__(self, token_url: str):
        super().__init__(APP_ID, APP_PASSWORD)
        self.token_url = token_url

    def get_access_token(self, force_refresh: bool = False) -> str:
        form = {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": APP_PASSWORD}
        response = requests.post(self.token_url, data=form, timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]


class LoopbackCredentialsFactory(PasswordServiceClientCredentialFactory):
    def __init__(self, authority: Authority):
        super().__init__(APP_ID, APP_PASSWORD)
        self.authority = authority

    async def create_credentials(self, app_id, oauth_scope, login_endpoint, validate_authority):
        return LoopbackCredentials(f"{self.authority.url}/token")


class Connector(_Server):
    def __init__(self, authority: Authority):
        super().__init__()
        self.authority = authority
        self.activities: list[dict] = []  # what the bot sent, with "_conversation" and "_authorized"
        self.faults: dict[str, list[int]] = defaultdict(list)  # conversation id -> statuses to answer
        # The people the roster knows (`29:` id -> account) and each roster lookup asked for.
        self.members: dict[str, dict] = {}
        self.member_lookups: list[tuple[str, str]] = []

    def fail(self, conversation: str, status: int, times: int = 1, after: int = 0) -> None:
        """Answer the next `times` activities sent to the conversation with `status`, after letting
        `after` through."""
        self.faults[conversation].extend([None] * after + [status] * times)

    def _fault(self, conversation: str) -> int | None:
        return self.faults[conversation].pop(0) if self.faults[conversation] else None

    def routes(self, app: web.Application) -> None:
        async def activities(request: web.Request) -> web.Response:
            conversation = request.match_info["conversation"]
            if status := self._fault(conversation):
                if status == DROP:
                    request.transport.close()
                    return web.Response()
                headers = {"Retry-After": "1"} if status == 429 else {}
                return web.json_response({"error": {"code": str(status)}}, status=status, headers=headers)
            body = await request.json()
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            body.update(_conversation=conversation, _authorized=bearer in self.authority.issued)
            self.activities.append(body)
            return web.json_response({"id": f"activity-{len(self.activities)}"})

        async def member(request: web.Request) -> web.Response:
            """GET a conversation's member (TeamsInfo.get_member): their Entra object id with them."""
            conversation, member_id = request.match_info["conversation"], request.match_info["member"]
            self.member_lookups.append((conversation, member_id))
            if status := self._fault(conversation):
                return web.json_response({}, status=status)
            if member_id not in self.members:
                return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)
            return web.json_response(self.members[member_id])

        app.router.add_post("/v3/conversations/{conversation}/activities", activities)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", activities)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", member)

    def to(self, conversation: str) -> list[dict]:
        return [a for a in self.activities if a["_conversation"] == conversation]

    async def wait_for(self, conversation: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.to(conversation)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} activities in {conversation}; got {self.activities}")
            await asyncio.sleep(0.02)
        return self.to(conversation)


def card_of(activity: dict) -> dict:
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def card_text(activity: dict) -> str:
    return json.dumps(card_of(activity), ensure_ascii=False)


def submit_data(activity: dict, title: str) -> dict:
    """The data of the card's Action.Submit with this title (what Teams sends back when pressed)."""
    [action] = [a for a in card_of(activity).get("actions", []) if a["title"] == title]
    return dict(action["data"])
