"""Settings from the environment (pydantic-settings). Fails fast, naming the key.

Nothing here is required to start: with no Slack credentials ``make run`` runs the demo, and
with no REDIS_URL the bot starts an embedded redis-server when nothing answers on
localhost:6379. What a command needs, it asks for with ``require_*``, which names the
missing variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.logs import register_secret
from bot.store.keys import DEFAULT_PREFIX

SLACK_DEFAULT_API_URL = "https://slack.com/api/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=SLACK_DEFAULT_API_URL, alias="SLACK_API_URL")
    # The workspace (and Enterprise Grid organisation) grantbot serves; deliveries from any
    # other are refused. Unset: taken from auth.test at start (see bot.slack.workspace).
    slack_team_id: str | None = Field(
        default=None, alias="SLACK_TEAM_ID", pattern=r"^T[A-Z0-9]{2,31}$"
    )
    slack_enterprise_id: str | None = Field(
        default=None, alias="SLACK_ENTERPRISE_ID", pattern=r"^E[A-Z0-9]{2,31}$"
    )

    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    redis_prefix: str = Field(
        default=DEFAULT_PREFIX, alias="GRANTBOT_REDIS_PREFIX", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )
    policy_path: Path = Field(default=Path("policies.yaml"), alias="GRANTBOT_POLICY")
    host: str = Field(default="0.0.0.0", alias="GRANTBOT_HOST")  # noqa: S104 - a server
    port: int = Field(default=3000, alias="GRANTBOT_PORT", ge=0, le=65535)
    data_dir: Path = Field(default=Path(".grantbot"), alias="GRANTBOT_DATA_DIR")
    log_level: str = Field(default="INFO", alias="GRANTBOT_LOG_LEVEL")

    # For auditors (docs/operations.md, "For auditors"): the key that signs checkpoints of
    # the audit chain (a PEM file's path, the PEM, or a base64 seed), how often the leader
    # writes one, and where serve ships the log (https://..., file:///... or a path).
    audit_signing_key: SecretStr | None = Field(default=None, alias="GRANTBOT_AUDIT_SIGNING_KEY")
    audit_checkpoint_interval_s: float = Field(
        default=300.0, alias="GRANTBOT_AUDIT_CHECKPOINT_INTERVAL", gt=0
    )
    audit_ship_to: str | None = Field(default=None, alias="GRANTBOT_AUDIT_SHIP_TO")
    audit_ship_token: SecretStr | None = Field(default=None, alias="GRANTBOT_AUDIT_SHIP_TOKEN")
    audit_ship_batch: int = Field(default=500, alias="GRANTBOT_AUDIT_SHIP_BATCH", ge=1, le=10000)

    def require_slack_http(self) -> tuple[str, str]:
        """The bot token and signing secret, or ConfigError naming the missing variable."""
        return (
            _require(self.slack_bot_token, "SLACK_BOT_TOKEN"),
            _require(self.slack_signing_secret, "SLACK_SIGNING_SECRET"),
        )

    def require_app_token(self) -> str:
        return _require(self.slack_app_token, "SLACK_APP_TOKEN")

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None


def _require(value: SecretStr | None, name: str) -> str:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{name} is not set")
    return value.get_secret_value()


def load_settings() -> Settings:
    """Read the environment; a malformed value raises ConfigError naming the variable."""
    try:
        settings = Settings()
    except ValidationError as e:
        first = e.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from e
    # Masked in any log line they might reach (an SDK's debug output, an error's repr).
    for secret in (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.audit_signing_key,
        settings.audit_ship_token,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return settings
