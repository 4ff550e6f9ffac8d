"""Card numbers are ASCII digits only (issue 10, item 11): fullwidth or Arabic-Indic
digits are digits to Python's str.isdigit(), but not a card number a network knows."""

from __future__ import annotations

import pytest

from tests.factories import sign_in_visitor

from .helpers import transaction_count

FULLWIDTH = "４２４２４２４２４２４２４２４２"
ARABIC_INDIC = "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢"


@pytest.mark.parametrize("card", [FULLWIDTH, ARABIC_INDIC, "4242 4242 4242 424²"])
def test_a_card_number_in_other_digits_is_refused_and_takes_no_money(client, personas, db, card):
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    before = transaction_count(db)
    r = client.post(
        "/api/v1/me/wallet/deposits",
        json={"amount_cents": 2500, "card_number": card, "idempotency_key": "wide-digits-01"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_card"
    assert r.json()["error"]["fields"] == {"card_number": "Enter 12 to 19 digits"}
    assert client.get("/api/v1/me/wallet").json()["balance_cents"] == 0
    assert transaction_count(db) == before


def test_the_wallet_page_refuses_fullwidth_digits_with_a_clear_message(client, personas, db):
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    page = client.get("/wallet")
    attempt = page.text.split('name="attempt" value="')[1].split('"')[0]
    r = client.post(
        "/wallet/deposits",
        data={
            "csrf_token": client.cookies["ov_csrf"],
            "amount": "25.00",
            "card_number": FULLWIDTH,
            "attempt": attempt,
        },
    )
    assert r.status_code == 422
    assert "Enter the card number: 12 to 19 digits." in r.text
    assert client.get("/api/v1/me/wallet").json()["balance_cents"] == 0
