"""Producer: HTTP API that accepts values into the Redis Streams queue."""

from apps.producer.app import create_app
from apps.producer.settings import ProducerSettings, load_settings

__all__ = ["ProducerSettings", "create_app", "load_settings"]
