"""Evaluating the model's behaviour: golden datasets (YAML cases with assertions, run through the
real agent loop and gate) and the BFCL single-turn benchmark. The command line is
``callgate eval``; `golden_params` runs a golden file inside a pytest suite."""

from callgate.eval.checks import Observation, ObservedCall, check
from callgate.eval.dataset import Case, Expect, GoldenFile, load_golden
from callgate.eval.pytest_support import assert_case_passes, golden_params
from callgate.eval.report import CaseReport, CaseRun, GoldenReport, compare
from callgate.eval.runner import GoldenRunner, ReferenceModel, model_factory

__all__ = [
    "Case",
    "CaseReport",
    "CaseRun",
    "Expect",
    "GoldenFile",
    "GoldenReport",
    "GoldenRunner",
    "Observation",
    "ObservedCall",
    "ReferenceModel",
    "assert_case_passes",
    "check",
    "compare",
    "golden_params",
    "load_golden",
    "model_factory",
]
