"""Settings for the whole suite (tests/ and examples/): hypothesis, and Ctrl-C.

No per-example deadline anywhere: a loaded 2-core machine makes timing meaningless.
Under CI (`CI` set), runs are derandomized (a fixed seed per test) and keep no example
database, so a landing is judged on the same examples every time; locally every run
explores new examples and remembers failures in .hypothesis/.
"""

import os
import signal

from hypothesis import HealthCheck, settings

# A background job of a non-interactive shell starts with SIGINT ignored, and children
# inherit an ignored signal: the tests that press Ctrl-C on a `dms` process would wait
# for ever. A handled signal is reset to its default in a child, so handle it here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("local", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "local")
