"""The gate: the one place a proposed call is decoded, validated, decided, approved and run."""
