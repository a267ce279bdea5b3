"""The hook's routes, one small module per resource; ``daemon.http.app``
includes each module's ``router``."""
