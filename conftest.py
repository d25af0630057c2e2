"""Hypothesis settings for the whole suite (tests/ and examples/).

No per-example deadline anywhere: a loaded 2-core machine makes timing meaningless.
Under CI (`CI` set), runs are derandomized (a fixed seed per test) and keep no example
database, so a landing is judged on the same examples every time; locally every run
explores new examples and remembers failures in .hypothesis/.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("local", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")
