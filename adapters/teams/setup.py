"""Building the Teams side from settings: botbuilder's CloudAdapter with the Bot Framework
authentication its configuration names (app id, password, tenant, app type)."""

from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import ServiceClientCredentialsFactory

from bot.settings import Settings


class BotConfiguration:
    """The attributes ConfigurationBotFrameworkAuthentication reads."""

    def __init__(self, settings: Settings):
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = settings.microsoft_app_password
        self.APP_TENANTID = settings.microsoft_app_tenant_id
        self.APP_TYPE = settings.microsoft_app_type
        if settings.teams_openid_metadata_url:
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.teams_openid_metadata_url
        if settings.teams_token_issuer:
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = settings.teams_token_issuer


def make_adapter(settings: Settings, credentials: ServiceClientCredentialsFactory | None = None) -> CloudAdapter:
    """`credentials`: how outgoing calls get their token; by default the app's own password or
    managed identity, as its configuration says."""
    auth = ConfigurationBotFrameworkAuthentication(BotConfiguration(settings), credentials_factory=credentials)
    return CloudAdapter(auth)
