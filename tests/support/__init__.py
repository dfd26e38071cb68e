"""Helpers shared by tests (real Apache + mod_wsgi, load generation)."""
