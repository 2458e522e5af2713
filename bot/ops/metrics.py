"""Prometheus metrics (prometheus-client), on a registry of the bot's own so that several
bots in one process (the tests) never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tasks_created = Counter(
            "imagine_tasks_created", "Tasks recorded, by kind.", ["kind"], registry=r
        )
        self.tasks_finished = Counter(
            "imagine_tasks_finished",
            "Tasks that reached an end, by kind and outcome (delivered or failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.tasks_failed = Counter(
            "imagine_tasks_failed", "Failed tasks, by reason.", ["reason"], registry=r
        )
        self.credits_refunded = Counter(
            "imagine_credits_refunded", "Credits given back for failed tasks.", registry=r
        )
        self.tasks_unfinished = Gauge(
            "imagine_tasks_unfinished", "Tasks not yet final, by state.", ["state"], registry=r
        )
        self.queue_length = Gauge(
            "imagine_queue_length", "Tasks recorded but not yet sent upstream.", registry=r
        )
        self.tasks_in_flight = Gauge(
            "imagine_tasks_in_flight", "Tasks a worker is driving right now.", registry=r
        )
        self.upstream_seconds = Histogram(
            "imagine_upstream_request_seconds",
            "Upstream request latency, by account and operation.",
            ["account", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.status_requests = Counter(
            "imagine_upstream_status_requests",
            "Status reads sent upstream, by account.",
            ["account"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "imagine_upstream_errors",
            "Upstream errors, by account and kind.",
            ["account", "kind"],
            registry=r,
        )
        self.account_in_rotation = Gauge(
            "imagine_upstream_account_in_rotation",
            "1 while the account takes tasks, 0 while its circuit breaker keeps it out.",
            ["account"],
            registry=r,
        )
        self.account_running = Gauge(
            "imagine_upstream_account_running",
            "Tasks the account's upstream works on now, by account.",
            ["account"],
            registry=r,
        )
        self.telegram_errors = Counter(
            "imagine_telegram_errors",
            "Telegram API errors, by kind (exception class).",
            ["kind"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "imagine_delivery_seconds",
            "From the upstream's result to the user having it.",
            ["kind"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
