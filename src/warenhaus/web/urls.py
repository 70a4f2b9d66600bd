"""Pages: the storefront at the root, the operator console under /console/."""

from django.urls import path

from . import console, console_deals, console_promotions, console_remediation, deals_pages, views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("category/<slug:slug>/", views.category, name="category"),
    path("search/", views.search, name="search"),
    path("product/<slug:slug>/", views.product, name="product"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path("cart/update/", views.cart_update, name="cart_update"),
    path("cart/remove/", views.cart_remove, name="cart_remove"),
    path("cart/shipping/", views.cart_shipping, name="cart_shipping"),
    path("cart/voucher/", views.cart_voucher, name="cart_voucher"),
    path("cart/voucher/remove/", views.cart_voucher_remove, name="cart_voucher_remove"),
    path("checkout/", views.checkout_page, name="checkout"),
    path("order/<str:number>/", views.order_confirmation, name="order_confirmation"),
    path("account/login/", views.login_page, name="login"),
    path("account/login/link/", views.login_link_page, name="login_link"),
    path("account/login/link/<str:key>/", views.login_link_confirm, name="login_link_confirm"),
    path("account/logout/", views.logout_page, name="logout"),
    path("account/register/", views.register_page, name="register"),
    path("account/orders/", views.my_orders, name="my_orders"),
    path("account/orders/<str:number>/", views.my_order, name="my_order"),
    path("deals/", deals_pages.deals_list, name="deals"),
    path("deals/offer/<str:token>/", deals_pages.deal_offer, name="deal_offer"),
    path("deals/<int:pk>/", deals_pages.deal_page, name="deal"),
    path("deals/<int:pk>/join/", deals_pages.deal_join, name="deal_join"),
    path("deals/<int:pk>/waitlist/", deals_pages.deal_waitlist, name="deal_waitlist"),
    path("deals/<int:pk>/queue/<str:ticket>/", deals_pages.deal_queue, name="deal_queue"),
    path(
        "deals/<int:pk>/queue/<str:ticket>/status/",
        deals_pages.deal_queue_status,
        name="deal_queue_status",
    ),
    # operator console
    path("console/", console.dashboard, name="console"),
    path("console/orders/", console.orders_list, name="console_orders"),
    path("console/orders/<str:number>/", console.order_detail, name="console_order"),
    path(
        "console/orders/<str:number>/<str:action>/",
        console.order_action,
        name="console_order_action",
    ),
    path("console/products/", console.products_list, name="console_products"),
    path("console/products/<slug:slug>/", console.product_edit, name="console_product"),
    path(
        "console/products/<slug:slug>/save/", console.product_update, name="console_product_update"
    ),
    path("console/variants/<str:sku>/price/", console.variant_price, name="console_variant_price"),
    path("console/variants/<str:sku>/stock/", console.variant_stock, name="console_variant_stock"),
    path("console/audit/", console.audit_list, name="console_audit"),
    path("console/promotions/", console_promotions.campaigns_list, name="console_campaigns"),
    path("console/promotions/new/", console_promotions.campaign_new, name="console_campaign_new"),
    path("console/promotions/alerts/", console_promotions.alerts_list, name="console_alerts"),
    path(
        "console/promotions/alerts/<int:pk>/acknowledge/",
        console_promotions.alert_acknowledge,
        name="console_alert_acknowledge",
    ),
    path(
        "console/promotions/kill-switch/",
        console_promotions.kill_switch,
        name="console_kill_switch",
    ),
    path(
        "console/promotions/<int:pk>/", console_promotions.campaign_detail, name="console_campaign"
    ),
    path(
        "console/promotions/<int:pk>/edit/",
        console_promotions.campaign_edit,
        name="console_campaign_edit",
    ),
    path(
        "console/promotions/<int:pk>/approve/",
        console_promotions.campaign_approve,
        name="console_campaign_approve",
    ),
    path(
        "console/promotions/<int:pk>/<str:action>/",
        console_promotions.campaign_action,
        name="console_campaign_action",
    ),
    path("console/deals/", console_deals.deals_list, name="console_deals"),
    path("console/deals/new/", console_deals.deal_new, name="console_deal_new"),
    path("console/deals/<int:pk>/", console_deals.deal_dashboard, name="console_deal"),
    path("console/deals/<int:pk>/live/", console_deals.deal_live, name="console_deal_live"),
    path("console/deals/<int:pk>/cancel/", console_deals.deal_cancel, name="console_deal_cancel"),
    path("console/remediation/", console_remediation.jobs_list, name="console_remediations"),
    path("console/remediation/new/", console_remediation.job_new, name="console_remediation_new"),
    path(
        "console/remediation/<int:pk>/", console_remediation.job_detail, name="console_remediation"
    ),
    path(
        "console/remediation/<int:pk>/progress/",
        console_remediation.job_progress,
        name="console_remediation_progress",
    ),
    path(
        "console/remediation/<int:pk>/execute/",
        console_remediation.job_execute,
        name="console_remediation_execute",
    ),
    path(
        "console/remediation/<int:pk>/export.csv",
        console_remediation.job_csv,
        name="console_remediation_csv",
    ),
]
