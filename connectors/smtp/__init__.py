"""Outbound email over SMTP (smtplib): the engine's ``MailSender``."""

from connectors.smtp.sender import SmtpMailSender

__all__ = ["SmtpMailSender"]
