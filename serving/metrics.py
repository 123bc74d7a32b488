"""Prometheus metrics of the service (its own registry, exposed on /metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    """Request counts by status, latency, score distribution and unknown entities."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    scores: Histogram
    unknown: Counter
    predictions: Counter


def create_metrics() -> Metrics:
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        requests=Counter("parity_requests_total", "HTTP requests by path and status code",
                         ["path", "status"], registry=registry),
        latency=Histogram("parity_request_latency_seconds", "Request latency by path", ["path"],
                          buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.008, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
                          registry=registry),
        scores=Histogram("parity_prediction_score", "Calibrated churn scores served", ["model_version"],
                         buckets=tuple(i / 10 for i in range(1, 11)), registry=registry),
        unknown=Counter("parity_unknown_customers_total", "Customers not found in the online store",
                        registry=registry),
        predictions=Counter("parity_predictions_total", "Predictions by model version and role",
                            ["model_version", "role"], registry=registry),
    )
