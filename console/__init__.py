"""The wsgi-fleet console: a Django + Channels project."""
