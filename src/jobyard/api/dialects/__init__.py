"""Vendor dialects: thin presenters that serve other products' job APIs over the same services.

Each dialect (a module or a package) has a `router`, the path `PREFIX` it serves and
`render_error`, the vendor's error shape; `api/app.py` mounts them and `api/errors.py` picks
the error shape by prefix. `http.py` holds the HTTP plumbing they share. No business rule
lives here: parse, authenticate, call a service (a read model for a view of many rows),
render.
"""
