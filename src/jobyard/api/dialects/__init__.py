"""Vendor dialects: thin presenters that serve other products' job APIs over the same services.

Each module has a `router`, the path `PREFIX` it serves and `render_error`, the vendor's
error shape; `api/app.py` mounts them and `api/errors.py` picks the error shape by prefix.
No business rule lives here: parse, authenticate, call a service, render.
"""
