import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")
application = get_wsgi_application()

# Load the URLconf (every view and serializer) now, then move all that was
# loaded out of the cyclic garbage collector's reach: a full collection
# otherwise walks the whole of Django each time, a 50–65 ms pause every few
# dozen /CAP/Status calls, which alone broke their 50 ms p99
# (bench/results/bench_status.md).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
gc.freeze()
# A monitor answer builds some 10 000 short-lived trend objects; with the
# default threshold (700) that sets off a young collection every few dozen
# rows and a full one every ten calls. A larger young generation lets them die
# uncollected; cycles are still found, only later.
gc.set_threshold(10_000, 10, 10)
