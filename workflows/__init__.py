"""Orchestration on top of the libraries: the quickstart job and the NUS experiment."""
