"""Exercises with automatic checks, 2–4 at the end of each notebook.

Edit the marked exercise cell, run it, then run its check::

    from perf import exercises
    await exercises.check("08.invalidation", update_price)   # a checklist: what passed, what failed, a hint
    exercises.progress()                                      # done / to do

Every check runs the learner's code against the real PostgreSQL and Redis, in a scratch
schema and key prefix it drops afterwards. Reference solutions live in
``notebooks/solutions/``; the test suite runs each check against its reference (must
pass) and against the untouched starter cell (must fail with a hint).
"""

from perf.exercises import api, background, caching, compression, db, load, pool
from perf.exercises.caching import Shop
from perf.exercises.core import EXERCISES, ExerciseResult, Progress, check, progress
from perf.exercises.db import SLOW_QUERY

__all__ = ["EXERCISES", "SLOW_QUERY", "ExerciseResult", "Progress", "Shop", "api", "background", "caching",
           "check", "compression", "db", "load", "pool", "progress"]
