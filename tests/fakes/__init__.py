"""Scripted local HTTP servers that speak providers' wire formats, for tests."""
