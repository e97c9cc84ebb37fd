"""Thin views, one module per capability; each serves a page and its htmx fragment."""
