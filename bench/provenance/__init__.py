"""The provenance evaluation: scripted injection attacks and benign tasks through a real Gate."""
