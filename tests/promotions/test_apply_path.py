"""The fast path of applying a code (bench/vouchers.py measures it; docs/benchmarks.md): the
answer is built inside the apply's transaction instead of reading the cart again, guessing is
counted in one statement, pattern blocks are asked in the code's own query, and a cart without
vouchers reads no voucher rows. Each shortcut must answer exactly as the long way did."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from warenhaus.checkout import services as checkout
from warenhaus.checkout import vouchers as cart_vouchers
from warenhaus.core import ratelimit
from warenhaus.core.errors import RateLimited
from warenhaus.promotions import services, sql
from warenhaus.promotions.errors import VoucherRefused

pytestmark = pytest.mark.django_db(transaction=True)


def _cart(product, user=None, quantity=1):
    cart, _ = checkout.create_cart(user=user)
    checkout.add_line(cart_id=cart.id, user=user, sku=product.variants.get().sku, quantity=quantity)
    return cart.id


def _fresh_view(cart_id, user=None) -> dict:
    return checkout.view_cart(checkout.get_cart(cart_id=cart_id, user=user)).as_json()


def test_the_answer_of_an_apply_is_the_cart_as_read_afterwards(make_product, make_campaign):
    make_campaign(public_code="ERSTER10", stacking="stackable")
    make_campaign(public_code="ZWEITER5", stacking="stackable", discount_value="5.00")
    cart_id = _cart(make_product(price="49.97"), quantity=2)
    for code in ("ERSTER10", "ZWEITER5", "zweiter-5"):  # the last one: already in the cart
        view = cart_vouchers.apply_voucher(
            cart_id=cart_id, code=code, channel="api", client_ip="10.0.0.1"
        )
        assert view.as_json() == _fresh_view(cart_id)
    assert [v["applies"] for v in view.as_json()["vouchers"]] == [True, True]


def test_a_voucher_refused_only_by_the_channel_is_shown_as_the_cart_view_shows_it(
    make_product, make_campaign
):
    """The trial runs with the request's channel, the cart view without one: when the channel
    refused a voucher held before, the answer is evaluated again, as the view would."""
    make_campaign(public_code="NURWEB10", channels=["web"], stacking="exclusive")
    make_campaign(public_code="UEBERALL5", stacking="stackable", discount_value="5.00")
    cart_id = _cart(make_product(price="49.97"))
    cart_vouchers.apply_voucher(cart_id=cart_id, code="NURWEB10", channel="web")
    view = cart_vouchers.apply_voucher(cart_id=cart_id, code="UEBERALL5", channel="api")
    assert view.as_json() == _fresh_view(cart_id)
    assert [v["problem"] for v in view.as_json()["vouchers"]] == [None, "voucher_not_stackable"]


def test_a_code_held_by_a_cart_without_lines_is_still_accepted_again(make_product, make_campaign):
    make_campaign(public_code="BLEIBT10")
    product = make_product(price="49.97")
    cart_id = _cart(product)
    cart_vouchers.apply_voucher(cart_id=cart_id, code="BLEIBT10")
    checkout.remove_line(cart_id=cart_id, sku=product.variants.get().sku)
    view = cart_vouchers.apply_voucher(cart_id=cart_id, code="BLEIBT10")
    assert view.as_json() == _fresh_view(cart_id) and view.lines == []


def _statements(fn) -> list[str]:
    with CaptureQueriesContext(connection) as q:
        fn()
    return [x["sql"] for x in q.captured_queries]


def test_a_cart_without_vouchers_reads_no_voucher_rows(make_product, make_campaign):
    make_campaign(public_code="SPAETER10")
    cart_id = _cart(make_product(price="49.97"))
    cart = checkout.get_cart(cart_id=cart_id)
    sql = _statements(lambda: checkout.view_cart(cart))
    assert len(sql) == 1 and "promotions_cartvoucher" in sql[0]  # only as EXISTS in the line query
    cart_vouchers.apply_voucher(cart_id=cart_id, code="SPAETER10")
    sql = _statements(lambda: checkout.view_cart(cart))
    assert len(sql) == 2
    assert _fresh_view(cart_id)["totals"]["discount"]["amount"] == "10.00"


def test_applying_takes_few_statements(make_product, make_campaign):
    """Counted, not timed: rate limit (1) and the address's count given back (1), cart lock,
    code with its pattern blocks, lines, insert, touch the cart, plus BEGIN/COMMIT where the
    driver logs them."""
    make_campaign(public_code="ZAEHLEN10")
    cart_id = _cart(make_product(price="49.97"))
    sql = _statements(
        lambda: cart_vouchers.apply_voucher(cart_id=cart_id, code="ZAEHLEN10", client_ip="10.0.0.2")
    )
    work = [s for s in sql if not s.upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(work) <= 7, work
    assert not any(s.upper().startswith(("SAVEPOINT", "RELEASE")) for s in sql), sql


@pytest.mark.parametrize(
    "pattern, code, blocked",
    [
        ("SOMMER*", "SOMMER10", True),
        ("SOMMER*", "SOMMER", True),
        ("SOMMER*", "SOMME", False),
        ("SOMMER*", "XSOMMER1", False),
        ("ABCDEFGHJK*", "ABCDEFGHJKMN", True),
        ("ABCDEFGHJK*", "ABCDEFGHJ", False),
    ],
)
def test_pattern_blocks_in_sql_match_as_in_python(
    make_campaign, author, approver, pattern, code, blocked
):
    from warenhaus.promotions.models import Code

    make_campaign(public_code="ANDERS10")
    services.block_pattern(pattern=pattern, actor=approver, reason="Leck")
    assert services.codes._matches_block_rule(code) is blocked
    flag = Code.objects.annotate(b=sql.code_blocked_by_rule(code)).values_list("b", flat=True).get()
    assert bool(flag) is blocked


def test_a_code_matching_a_pattern_block_is_refused_on_the_next_request(
    make_product, make_campaign, approver
):
    make_campaign(public_code="HERBST10")
    cart_id = _cart(make_product(price="49.97"))
    services.block_pattern(pattern="HERB*", actor=approver, reason="Leck")
    with pytest.raises(VoucherRefused) as err:
        cart_vouchers.apply_voucher(cart_id=cart_id, code="HERBST10")
    assert err.value.code == "voucher_blocked"


def test_counting_several_limits_at_once_counts_like_one_after_another():
    window = 900
    limits = [("t-cart", "c1", 2), ("t-addr", "a1", 100)]
    assert ratelimit.hit_all_or_refuse(limits, window=window, message="x") == {
        "t-cart": 1,
        "t-addr": 1,
    }
    assert ratelimit.hit_all_or_refuse(limits, window=window, message="x") == {
        "t-cart": 2,
        "t-addr": 2,
    }
    with pytest.raises(RateLimited):
        ratelimit.hit_all_or_refuse(limits, window=window, message="x")
    # refused at the first limit: the cart counted the attempt, the address did not (as before)
    assert (
        ratelimit.hits("t-cart", "c1", window) == 3 and ratelimit.hits("t-addr", "a1", window) == 2
    )
    # refused at a later limit: every limit up to it counted
    with pytest.raises(RateLimited):
        ratelimit.hit_all_or_refuse(
            [("t-addr", "a1", 100), ("t-cart", "c1", 2)], window=window, message="x"
        )
    assert (
        ratelimit.hits("t-cart", "c1", window) == 4 and ratelimit.hits("t-addr", "a1", window) == 3
    )
    assert ratelimit.hit_or_refuse("t-other", "o", limit=5, window=window, message="x") == 1


def test_the_cart_and_session_count_every_attempt_and_the_address_only_unknown_codes(
    make_product, make_campaign, settings
):
    from warenhaus.core.models import RateCounter

    make_campaign(public_code="ZAEHLT10", min_basket="100.00")
    make_campaign(public_code="PASST10")
    cart_id = _cart(make_product(price="49.97"))
    tries = [
        "FALSCH99",
        "ZAEHLT10",
        "PASST10",
        "PASST10",
        "ABCD-EFGH-JKMN",
    ]  # unknown, known but basket too small, good, held, typo
    for code in tries:
        try:
            cart_vouchers.apply_voucher(
                cart_id=cart_id, code=code, client_ip="10.0.0.3", session_key="s1"
            )
        except VoucherRefused:
            pass
    counts = {
        name: ratelimit.hits(name, key, settings.VOUCHER_ATTEMPT_WINDOW)
        for name, key in (
            ("voucher-cart", cart_id),
            ("voucher-session", "s1"),
            ("voucher-addr", "10.0.0.3"),
        )
    }
    assert counts == {"voucher-cart": len(tries), "voucher-session": len(tries), "voucher-addr": 2}
    assert RateCounter.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.xdist_group("pg-concurrency")
def test_parallel_guesses_cannot_pass_the_limit(make_product, make_campaign, settings):
    """20 threads guess on one cart at once, limit 5: exactly 5 get an answer about the code,
    the rest 429, every attempt is counted, and the address counted as many as were not refused
    at the cart's limit (as one check after the other would)."""
    from django.conf import settings as dj

    if not dj.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("concurrency promises are proved on PostgreSQL")
    from tests.concurrency.support import run_together

    settings.VOUCHER_ATTEMPT_LIMIT = 5
    make_campaign(public_code="ECHT10")
    cart_id = _cart(make_product(price="49.97"))

    def guess(i):
        try:
            cart_vouchers.apply_voucher(
                cart_id=cart_id, code=f"RATEN{i:02d}X", client_ip="10.0.0.9"
            )
        except (VoucherRefused, RateLimited) as err:
            return err.code
        return "applied"

    outcomes = run_together(20, guess)
    assert sorted(outcomes) == ["rate_limited"] * 15 + ["voucher_unknown"] * 5, outcomes
    window = settings.VOUCHER_ATTEMPT_WINDOW
    assert ratelimit.hits("voucher-cart", cart_id, window) == 20
    assert ratelimit.hits("voucher-addr", "10.0.0.9", window) == 5
