"""The demo shop: a German department store's catalog, staff of every role and shoppers with orders (``warenhaus demo``)."""
