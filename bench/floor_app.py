"""The floor under every request: a WSGI application that answers a constant JSON body, served
by gunicorn with the shop's production configuration (``bench/flash_capacity.py --floor``).
What a request costs here is what gunicorn costs before any of the shop's code runs."""

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
