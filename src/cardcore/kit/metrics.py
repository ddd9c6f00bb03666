"""Prometheus metrics. With several API processes (`CARDCORE_WORKERS` > 1) `cardcore serve` sets
`PROMETHEUS_MULTIPROC_DIR`, and `/metrics` then adds up what every process recorded."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "cardcore_http_requests_total",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "cardcore_http_request_duration_seconds",
    "Time from first byte received to response sent, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

WEBHOOK_DELIVERIES = Counter(
    "cardcore_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: success, failure, refused (SSRF guard).",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "cardcore_webhook_delivery_duration_seconds",
    "Time a webhook receiver took to answer (or to fail).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
WEBHOOK_OLDEST_UNDELIVERED = Gauge(
    "cardcore_webhook_oldest_undelivered_seconds",
    "Age of the oldest event still waiting for fan-out or delivery (0 when none).",
    multiprocess_mode="max",
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
