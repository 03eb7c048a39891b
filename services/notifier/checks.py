"""What a notifier configuration leaves open, said in words: logged as warnings when the notifier
starts and shown by `automata doctor`. Neither stops anything (notifications still go out); both
are a choice the user should make knowingly."""

from __future__ import annotations

from shared.config import NotifierConfig


def config_warnings(cfg: NotifierConfig) -> list[str]:
    """One sentence each: the risk, then the setting that removes it."""
    found = []
    if cfg.webhook.url and not cfg.webhook.secret:
        found.append(
            "notifier.webhook.url is set without a secret, so notifications are POSTed unsigned and a "
            "receiver cannot tell them from forgeries; set notifier.webhook.secret (or "
            "NOTIFIER_WEBHOOK_SECRET)"
        )
    if cfg.telegram.token and cfg.telegram.commands and not cfg.telegram.allowed_users:
        found.append(
            "notifier.telegram.allowed_users is empty: every Telegram command is refused; add your "
            "Telegram user id (or set TELEGRAM_ALLOWED_USERS), or set notifier.telegram.commands = false"
        )
    return found
