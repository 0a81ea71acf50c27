"""The quarantine for dependencies' private names: one module per dependency, nothing else.

The rule (STYLE.md, 23): ``perf`` uses its dependencies' public APIs. Where a private name
(an ``_attribute``, an ``_module``, a class a package does not export) is the only way to a
measured speed or a needed behaviour, it is used here and nowhere else, behind a small named
function or class that the rest of ``perf`` calls. Each module says which versions it was
checked against (the pins in ``requirements.txt``) and why no public API does the job;
``tests/test_compat.py`` checks every name on the installed version and fails naming the
dependency, the name and the pin when one moves. ``docs/techniques.md`` lists each name kept
with the upstream change that would remove it.

This package sits on the lowest floor: it imports dependencies only, never another ``perf``
module (``tests/test_layers.py``).
"""
