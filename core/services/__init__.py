"""Services: the API that pages and the CLI call. Each takes the session factory and the acting
identity as keyword arguments, checks permissions itself, runs one transaction and returns plain
values (dicts and dataclasses), never ORM objects."""
