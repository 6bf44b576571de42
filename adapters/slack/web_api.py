"""The Slack Web API client.

Messages are retried by the outbox (bot/outbox.py), which honours Retry-After durably; the
client itself retries only a dropped connection once, so a 429 or a 5xx reaches the outbox.
"""

from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings


def retry_handlers() -> list:
    return [AsyncConnectionErrorRetryHandler(max_retry_count=1)]


def make_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=retry_handlers(),
    )
