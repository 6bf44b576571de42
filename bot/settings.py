"""All configuration, read once from the environment and an optional `.env` file."""

from datetime import timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.cron import Schedule
from digests.models import missing, named_model
from storage.db import is_in_memory

DEV_SECRET = "frictionlog-development-secret"


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.replace(";", ",").split(",") if item.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    environment: Literal["development", "production"] = Field("development", alias="FRICTIONLOG_ENV")
    database_url: str = Field("sqlite:///frictionlog.db", alias="DATABASE_URL")
    embeddings: Literal["local", "openai", "hashing"] = Field("local", alias="FRICTIONLOG_EMBEDDINGS")
    # `minilm` (the packaged all-MiniLM-L6-v2; also when empty), `mpnet` (all-mpnet-base-v2, after
    # `make mpnet`), or any other sentence-transformers model name or local path.
    embedding_model: str = Field("", alias="FRICTIONLOG_EMBEDDING_MODEL")
    openai_api_key: str = Field("", alias="OPENAI_API_KEY")
    openai_base_url: str = Field("", alias="OPENAI_BASE_URL")
    openai_embedding_model: str = Field("text-embedding-3-small", alias="FRICTIONLOG_OPENAI_EMBEDDING_MODEL")
    # With a chat model named here, themes get model-written titles (validated, with the
    # offline title as the fallback); empty means offline titles only.
    openai_chat_model: str = Field("", alias="FRICTIONLOG_OPENAI_CHAT_MODEL")
    openai_timeout: float = Field(20.0, gt=0, alias="FRICTIONLOG_OPENAI_TIMEOUT")
    timezone: str = Field("UTC", alias="FRICTIONLOG_TIMEZONE")
    # Comma-separated user ids (and, on Slack, user group handles) allowed to curate themes.
    team_leads: str = Field("", alias="FRICTIONLOG_TEAM_LEADS")
    # Microsoft Teams leads: Entra object ids.
    team_leads_teams: str = Field("", alias="FRICTIONLOG_TEAM_LEADS_TEAMS")
    # Keys the author hashes that let anonymous senders undo and see their own submissions.
    secret_key: str = Field(DEV_SECRET, alias="FRICTIONLOG_SECRET_KEY")
    # At most the 4,000 characters the text column holds (counted after redaction).
    max_message_chars: int = Field(4000, ge=1, le=4000, alias="FRICTIONLOG_MAX_MESSAGE_CHARS")
    # Deadlines that chase themselves (bot/deadlines.py): an owner acknowledges within ack_hours of
    # being assigned and gives a first status update within update_days; a deadline missed brings
    # the owner a reminder, and escalate_hours later the team leads an escalation.
    ack_hours: int = Field(24, ge=1, alias="FRICTIONLOG_ACK_HOURS")
    update_days: int = Field(7, ge=1, alias="FRICTIONLOG_UPDATE_DAYS")
    escalate_hours: int = Field(24, ge=1, alias="FRICTIONLOG_ESCALATE_HOURS")
    # At most this many unprompted bot messages a person a local day; the rest go out together.
    dm_budget: int = Field(5, ge=1, alias="FRICTIONLOG_DM_BUDGET")
    # Anonymity: quotes, examples and breakdowns only for groups of at least this many distinct
    # reporters; smaller themes show by title and count alone.
    min_group: int = Field(5, alias="FRICTIONLOG_MIN_GROUP")
    # The inbound pipeline: how long storing an event may take before the platform is told to
    # redeliver (Slack gives 3 s), and how long a process holds a delivery or an outbox message
    # before another takes it over (a process killed mid-way).
    accept_timeout: float = Field(2.0, gt=0, le=2.5, alias="FRICTIONLOG_ACCEPT_TIMEOUT")
    claim_seconds: float = Field(60.0, gt=0, alias="FRICTIONLOG_CLAIM_SECONDS")
    # Slack: with a bot token, `frictionlog serve` serves Slack (Socket Mode when an app token is set).
    slack_bot_token: str = Field("", alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str = Field("", alias="SLACK_SIGNING_SECRET")
    slack_app_token: str = Field("", alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    digest_slack_channels: str = Field("", alias="FRICTIONLOG_DIGEST_SLACK_CHANNELS")
    # Microsoft Teams: with an app id, `frictionlog serve` serves Teams at /api/messages.
    microsoft_app_id: str = Field("", alias="MICROSOFT_APP_ID")
    microsoft_app_password: str = Field("", alias="MICROSOFT_APP_PASSWORD")
    microsoft_app_tenant_id: str = Field("", alias="MICROSOFT_APP_TENANT_ID")
    microsoft_app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = Field(
        "MultiTenant", alias="MICROSOFT_APP_TYPE"
    )
    # Teams without an app id (local Bot Framework tools): authentication is off, so only these
    # serviceUrls (and loopback) are answered. Development only.
    teams_without_app_id: bool = Field(False, alias="FRICTIONLOG_TEAMS_WITHOUT_APP_ID")
    teams_service_urls: str = Field("", alias="FRICTIONLOG_TEAMS_SERVICE_URLS")
    # Where Bot Framework tokens come from; empty: the public cloud's (sovereign clouds differ).
    teams_openid_metadata_url: str = Field("", alias="MICROSOFT_OPENID_METADATA_URL")
    teams_token_issuer: str = Field("", alias="MICROSOFT_TOKEN_ISSUER")
    # Scheduled work inside `frictionlog serve`: crontab fields in FRICTIONLOG_TIMEZONE.
    digest_cron: str = Field("0 9 * * mon", alias="FRICTIONLOG_DIGEST_CRON")
    recluster_hours: float = Field(6.0, ge=0, alias="FRICTIONLOG_RECLUSTER_HOURS")  # 0: off
    # Re-clustering re-themes the submissions of the last this-many days; older ones keep the
    # theme they have, so last quarter's themes do not shift under their owners. 0: everything.
    recluster_days: int = Field(90, ge=0, alias="FRICTIONLOG_RECLUSTER_DAYS")

    @property
    def recluster_window(self) -> timedelta | None:
        return timedelta(days=self.recluster_days) if self.recluster_days else None

    @field_validator("digest_cron")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        """Read as every target's schedule is (bot/cron.py): five fields, each one valid."""
        try:
            return Schedule.parse(value, "UTC").cron
        except ValueError as error:
            raise ValueError(f"FRICTIONLOG_DIGEST_CRON: {error}") from None

    @field_validator("database_url")
    @classmethod
    def _kept_database(cls, value: str) -> str:
        """An in-memory SQLite database is a new, empty one for each connection, and frictionlog
        stores on several threads at once: nothing would be found again."""
        if value.startswith("sqlite") and is_in_memory(value):
            raise ValueError(
                "DATABASE_URL: an in-memory SQLite database is not kept between connections; "
                "use a file (sqlite:///frictionlog.db) or PostgreSQL"
            )
        return value

    @field_validator("min_group")
    @classmethod
    def _groups_big_enough(cls, value: int) -> int:
        if value < 3:
            raise ValueError(
                f"FRICTIONLOG_MIN_GROUP={value} would let a quote or breakdown single out one or two people; "
                "it must be at least 3 (default 5)"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from error
        return value

    @model_validator(mode="after")
    def _named_model_installed(self) -> "Settings":
        """A named local model that is not there stops start-up with what to do, rather than the
        first submission after the ack."""
        if self.embeddings == "local":
            model = named_model(self.embedding_model)
            problem = model and missing(model)
            if problem:
                raise ValueError(f"FRICTIONLOG_EMBEDDING_MODEL={self.embedding_model or model.choice}: {problem}")
        return self

    @model_validator(mode="after")
    def _safe_in_production(self) -> "Settings":
        if self.environment != "production":
            return self
        problems = []
        if self.secret_key == DEV_SECRET:
            problems.append("FRICTIONLOG_SECRET_KEY is the development default")
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL points at SQLite; production runs on PostgreSQL")
        if self.embeddings == "openai" and not (self.openai_api_key or self.openai_base_url):
            problems.append("FRICTIONLOG_EMBEDDINGS=openai needs OPENAI_API_KEY or OPENAI_BASE_URL")
        if self.slack_bot_token and not self.slack_signing_secret:
            problems.append("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not")
        if self.microsoft_app_id and self.microsoft_app_type != "UserAssignedMSI" and not self.microsoft_app_password:
            problems.append(
                "MICROSOFT_APP_ID is set but MICROSOFT_APP_PASSWORD is not (or use MICROSOFT_APP_TYPE=UserAssignedMSI)"
            )
        if self.teams_without_app_id:
            problems.append(
                "FRICTIONLOG_TEAMS_WITHOUT_APP_ID turns Teams authentication off: set MICROSOFT_APP_ID instead"
            )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def team_lead_ids_for(self, platform: str) -> frozenset[str]:
        """Leads on one platform: unprefixed entries of FRICTIONLOG_TEAM_LEADS_TEAMS for Teams and
        of FRICTIONLOG_TEAM_LEADS for the others; an entry may name its platform (`slack:U123`)."""
        own = self.team_leads_teams if platform == "teams" else self.team_leads
        ids = set()
        for listed in (self.team_leads, self.team_leads_teams):
            for entry in split_list(listed):
                named, _, rest = entry.partition(":")
                if named in ("slack", "teams", "console", "test") and rest:
                    if named == platform:
                        ids.add(rest)
                elif listed is own:
                    ids.add(entry)
        return frozenset(ids)

    @cached_property
    def team_lead_groups(self) -> frozenset[str]:
        """Entries that may name a user group (`@cx-leads` or `cx-leads`), without the @."""
        return frozenset(item.lstrip("@") for item in split_list(self.team_leads))

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def teams_enabled(self) -> bool:
        return bool(self.microsoft_app_id) or self.teams_without_app_id

    @property
    def slack_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)

    @cached_property
    def digest_slack_channel_list(self) -> list[str]:
        return split_list(self.digest_slack_channels)
