"""Call-time middleware, one concern per module: rate limits, sanitisation, provenance."""
