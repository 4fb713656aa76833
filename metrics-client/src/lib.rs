//! Metrics API client (placeholder until the metrics-client issue lands).
