"""Background jobs: processing inbound SMS, sending SMS and calls, sweeps."""
