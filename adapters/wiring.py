"""Building a ready service from settings: the one place that picks implementations."""

from bot.clock import Clock, system_clock
from bot.router import Router
from bot.service import FrictionService
from bot.settings import Settings
from digests.embeddings import Embedder, HashingEmbedder, LocalEmbedder
from digests.naming import TitleModel
from storage.db import make_engine, prepare


def make_embedder(settings: Settings) -> Embedder:
    if settings.embeddings == "hashing":
        return HashingEmbedder()
    if settings.embeddings == "openai":
        # The composition root may reach the edge; the core itself never imports openai.
        from adapters.openai_models import OpenAIEmbedder, make_client

        client = make_client(settings.openai_api_key, settings.openai_base_url, timeout=settings.openai_timeout)
        return OpenAIEmbedder(client, settings.openai_embedding_model)
    return LocalEmbedder(settings.embedding_model)


def make_title_model(settings: Settings) -> TitleModel | None:
    if not settings.openai_chat_model:
        return None
    from adapters.openai_models import OpenAITitleModel, make_client

    client = make_client(settings.openai_api_key, settings.openai_base_url, timeout=settings.openai_timeout)
    return OpenAITitleModel(client, settings.openai_chat_model)


def build_service(settings: Settings, *, clock: Clock = system_clock, migrate: bool = True) -> FrictionService:
    engine = make_engine(settings.database_url)
    if migrate:
        prepare(engine)
    return FrictionService(
        engine, settings, make_embedder(settings), clock=clock, title_model=make_title_model(settings)
    )


def make_router(settings: Settings, service: FrictionService) -> Router:
    """The platforms configured here, for commands that name people or send (the CLI)."""
    router = Router()
    if settings.slack_enabled:
        from adapters.slack.platform import SlackPlatform
        from adapters.slack.web_api import make_client

        router.add(SlackPlatform(make_client(settings), service.codec))
    return router
