"""What forge tells about itself: metrics, prices, OpenTelemetry spans and metrics, Prometheus text."""
