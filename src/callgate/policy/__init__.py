"""One decision per call (allow / deny / needs approval), the same at list and call time."""

from callgate.policy.engine import DEFAULT_DENY, DefaultPolicy, Policy, PythonRule, Rule

__all__ = ["DEFAULT_DENY", "DefaultPolicy", "Policy", "PythonRule", "Rule"]
