"""Serve the producer with gunicorn (embedded), read-only-root-filesystem friendly."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from apps.producer.app import create_app
from apps.producer.settings import ProducerSettings


class ProducerServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: ProducerSettings) -> None:
        self.settings = settings
        super().__init__()

    def gunicorn_options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "bind": [f"{s.bind_host}:{s.port}"],
            "workers": s.workers,
            "threads": s.threads,
            "worker_class": "gthread",
            # Only the temp dir is writable on a read-only root filesystem.
            "worker_tmp_dir": s.tmp_dir,
            "control_socket_disable": True,
            "pidfile": None,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": s.log_level,
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "proc_name": "producer",
        }

    def load_config(self) -> None:
        for key, value in self.gunicorn_options().items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


def serve(settings: ProducerSettings) -> None:
    ProducerServer(settings).run()
