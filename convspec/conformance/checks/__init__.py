"""The check families, one module each: differential (+special), hygiene, oracle, invalid, defaults.

Each check takes a :class:`..context.CheckContext` and returns CheckResults; checks import the
context and data modules, never the engine (the properties family lives in ``..properties``).
"""
