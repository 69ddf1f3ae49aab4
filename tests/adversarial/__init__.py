"""The adversarial suite: generated hostile calls checked against an independent validator."""
