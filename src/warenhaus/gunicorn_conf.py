"""gunicorn settings for ``warenhaus serve`` (read as ``-c python:warenhaus.gunicorn_conf``).

Everything a deployment changes comes from the environment:

    BIND              address to listen on (default 127.0.0.1:8000; comma-separated for several)
    WEB_CONCURRENCY   worker processes (default CPU cores + 1)
    WEB_THREADS       threads per worker (default 4; 1 switches to the sync worker)
    WEB_TIMEOUT       seconds before a stuck worker is restarted (default 60)
    ACCESS_LOG        where the access log goes (default "-", standard output; "" turns it off)
    FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers are trusted (default 127.0.0.1)

Threads (gthread) suit this app: requests mostly wait for the database, and each thread keeps its
own connection (``DB_CONN_MAX_AGE``). The classic 2 x cores + 1 processes is generous for a
threaded app: measured on 2 cores (docs/benchmarks.md), cores + 1 processes x 4 threads gave the
same throughput with a shorter tail and 40 % less memory. Static files are served by WhiteNoise
inside the app. Answers carry no ``Server`` header: what software (and version) serves the shop is
nobody's business.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


bind = [b.strip() for b in os.environ.get("BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1)
threads = _int("WEB_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("WEB_TIMEOUT", 60)
graceful_timeout = 20
keepalive = 5
backlog = 512
# Recycle workers now and then so a slow leak can never take a machine down.
max_requests = 20000
max_requests_jitter = 2000

wsgi_app = "warenhaus.wsgi:application"
proc_name = "warenhaus"
accesslog = os.environ.get("ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket lives at one fixed path per user; several shops (or a shop and its
# tests) on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
raw_env = [
    "DJANGO_SETTINGS_MODULE=" + os.environ.get("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
]


def on_starting(server):
    """Refuse to start without the production secrets, before any worker is forked (the
    application refuses too, but gunicorn would only say that a worker failed to boot)."""
    import sys

    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    from warenhaus.core.checks import require_production_secrets

    try:
        require_production_secrets("gunicorn (warenhaus)")
    except ImproperlyConfigured as err:
        print(err, file=sys.stderr, flush=True)
        sys.exit(2)


def no_server_banner() -> None:
    """gunicorn writes ``Server: gunicorn`` into every answer's head (``Response.default_headers``,
    with no setting to turn it off); leave that line out."""
    from gunicorn.http import wsgi

    with_banner = wsgi.Response.default_headers
    if getattr(with_banner, "without_banner", False):
        return

    def default_headers(self):
        return [line for line in with_banner(self) if not line.lower().startswith("server:")]

    default_headers.without_banner = True
    wsgi.Response.default_headers = default_headers


def post_worker_init(worker):
    """No ``Server`` banner; and the admission limiter learns how long each request waited for a
    thread (``X-Request-Start``): a rush's surplus gets a quick 429 instead of a minute in the
    worker's queue."""
    from warenhaus.deals.limiter import stamp_queue_time

    no_server_banner()
    stamp_queue_time(worker)
