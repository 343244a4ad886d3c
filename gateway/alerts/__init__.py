"""Budget and balance alerts: signed webhook deliveries."""
