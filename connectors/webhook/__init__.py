"""Outbound webhooks over HTTP (httpx): the engine's ``WebhookSender``."""

from connectors.webhook.sender import HttpWebhookSender

__all__ = ["HttpWebhookSender"]
