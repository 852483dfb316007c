"""Sending mail over SMTP (aiosmtplib), with the settings' host, port, TLS mode, login and From address."""

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from query_api.settings import QueryApiSettings


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str | None = None


class MailNotConfigured(RuntimeError):
    """SELLTHROUGH_SMTP_HOST is not set: nothing can be sent."""


def message(mail: Mail, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg.set_content(mail.text)
    if mail.html is not None:
        msg.add_alternative(mail.html, subtype="html")
    return msg


async def send(settings: QueryApiSettings, mails: list[Mail]) -> int:
    """Send `mails` over one SMTP connection; how many were sent. Raises on the first failure (the schedule's
    mark is then not moved, so the next tick sends them again)."""
    if not mails:
        return 0
    if settings.smtp_host is None:
        raise MailNotConfigured("set SELLTHROUGH_SMTP_HOST to send the digest and review pack")
    smtp = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=30,
    )
    async with smtp:
        for mail in mails:
            await smtp.send_message(message(mail, settings.smtp_from))
    return len(mails)
