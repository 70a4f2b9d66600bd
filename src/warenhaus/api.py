"""The public JSON API, v1 (see shared/API.md): one NinjaAPI, one router per domain."""

from ninja import NinjaAPI

api = NinjaAPI(title="Warenhaus API", version="1", urls_namespace="api-v1", docs_url="/docs")
