"""Shared fixtures: factories that go through the services, API clients, and the PostgreSQL
switch. The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL points there
(``make test`` does both)."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop


def _use_test_secrets() -> None:
    """The suite's own secrets: production mode refuses the demo's public ones, and the servers
    and workers the tests start inherit these (so they read what the tests wrote)."""
    from warenhaus.core.checks import SECRETS

    for name in SECRETS:
        value = (
            os.environ.get(name)
            or f"tests-only-{name.lower().replace('_', '-')}-0123456789abcdefghij"
        )
        os.environ[name] = value
        setattr(settings, name, value)


_use_test_secrets()

_seq = itertools.count(1)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


requires_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="concurrency promises are proved on PostgreSQL",
)


@pytest.fixture(autouse=True)
def _fast_hashing_and_clean_cache(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PAYMENT_METHODS = ["invoice", "test"]  # production offers only what is configured
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"t{next(_seq)}",
        }
    }
    from django.core.cache import cache

    cache.clear()
    from warenhaus.deals.services import forget_everything

    forget_everything()  # per-process caches of deal rows (ids repeat between tests)
    yield


@pytest.fixture
def make_category(db):
    from warenhaus.catalog.services import create_category

    def make(slug=None, name=None, parent=None):
        n = next(_seq)
        return create_category(
            slug=slug or f"kategorie-{n}",
            name=name or f"Kategorie {n}",
            name_en=f"Category {n}",
            parent=parent,
        )

    return make


@pytest.fixture
def make_product(db, make_category):
    from warenhaus.catalog.services import create_product

    def make(
        *,
        title=None,
        price="19.99",
        on_hand=10,
        vat_rate="19",
        category=None,
        sku=None,
        variants=None,
        is_active=True,
    ):
        n = next(_seq)
        cat = category or make_category()
        variants = variants or [
            {"sku": sku or f"SKU-{n:05d}", "title": "", "price": price, "on_hand": on_hand}
        ]
        return create_product(
            actor=None,
            title=title or f"Produkt {n}",
            category=cat.slug,
            variants=variants,
            vat_rate=vat_rate,
            is_active=is_active,
            description="Ein gutes Produkt.",
            brand="Marke",
        )

    return make


@pytest.fixture
def variant(make_product):
    return make_product(price="49.97", on_hand=10).variants.get()


@pytest.fixture
def make_user(db):
    from warenhaus.accounts.services import create_staff, register_customer

    def make(*, email=None, password="Geheim-Passwort-1", roles=None, name="Erika Mustermann"):
        email = email or f"user{next(_seq)}@example.de"
        if roles:
            return create_staff(email=email, password=password, roles=list(roles), name=name)
        return register_customer(email=email, password=password, name=name)

    return make


@pytest.fixture
def shopper(make_user):
    return make_user()


@pytest.fixture
def address():
    return {
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "country": "DE",
    }


def _fast_lane_client():
    """Django's test client with the waiting room's fast lane in front, as ``warenhaus.wsgi``
    serves the app: a deal join or ticket poll the lane takes is answered by it (``response.fast_lane``
    is True), everything else (and what the lane passes on) by Django as usual."""
    import functools

    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import Client
    from django.test.client import FakePayload

    class FastLaneClient(Client):
        def request(self, **request):
            from warenhaus.deals import fastlane

            environ = self._base_environ(**request)
            stream = environ.get("wsgi.input")
            # as Django's test handler does: the test's transaction owns the connection
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
            try:
                response = fastlane.handle(environ)
            finally:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)
            if response is None:
                if (
                    environ.get("wsgi.input") is not stream
                ):  # the lane read the body: Django gets it back
                    request["wsgi.input"] = FakePayload(environ["wsgi.input"].getvalue())
                return super().request(**request)
            response.fast_lane = True
            response.client, response.request, response.wsgi_request = self, request, None
            response.json = functools.partial(self._parse_json, response)
            response.templates, response.context, response.resolver_match = [], None, None
            if response.cookies:
                self.cookies.update(response.cookies)
            return response

    return FastLaneClient()


class ApiClient:
    """A thin JSON client over Django's test client that speaks the API's conventions."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def _headers(self, headers):
        h = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        return h

    def get(self, path, headers=None, **params):
        return self.client.get(f"/api/v1{path}", params or None, headers=self._headers(headers))

    def _send(self, method, path, body, headers):
        import json

        data = json.dumps(body) if body is not None else ""
        return getattr(self.client, method)(
            f"/api/v1{path}",
            data=data,
            content_type="application/json",
            headers=self._headers(headers),
        )

    def post(self, path, body=None, headers=None):
        return self._send("post", path, body, headers)

    def put(self, path, body=None, headers=None):
        return self._send("put", path, body, headers)

    def patch(self, path, body=None, headers=None):
        return self._send("patch", path, body, headers)

    def delete(self, path, headers=None):
        return self.client.delete(f"/api/v1{path}", headers=self._headers(headers))


@pytest.fixture
def api(db):
    """An anonymous ApiClient (through the fast lane, as the production server has it)."""
    return ApiClient(_fast_lane_client())


@pytest.fixture
def api_as(db):
    """``api_as(user)`` -> an ApiClient authenticated with a fresh token for ``user``."""
    from warenhaus.accounts.services import issue_token

    def make(user):
        return ApiClient(_fast_lane_client(), token=issue_token(user=user) if user else None)

    return make


@pytest.fixture
def checkout_body(address):
    return {"email": "erika@example.de", "shipping_address": address, "payment_method": "invoice"}


def money(amount) -> dict:
    return {"amount": f"{Decimal(amount):.2f}", "currency": "EUR"}
