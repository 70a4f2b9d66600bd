"""The payment gateways live in :mod:`warenhaus.payments.gateways`; re-exported here for the
callers that still import them from checkout."""

from warenhaus.payments.gateways import (  # noqa: F401
    GATEWAYS,
    Authorization,
    Gateway,
    InvoiceGateway,
    PaymentTimeout,
    TestCardGateway,
    enabled,
    gateway,
)
