"""What operators see: logs with secrets masked, Prometheus metrics, the /stats chart."""
