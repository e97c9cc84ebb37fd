import logging

from django.conf import settings

REMOVED = "[removed]"


class RedactSecretsFilter(logging.Filter):
    """Last line of defence: no log line carries the SparkBot API key, whoever wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secret = getattr(settings, "SPARKBOT_API_KEY", "")
        message = record.getMessage()
        if secret and secret in message:
            record.msg, record.args = message.replace(secret, REMOVED), ()
        if secret and record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info).replace(secret, REMOVED)
            record.exc_info = None
        return True
