"""The wallet page: a family adds money from the browser, once per submit, and sees it."""

from __future__ import annotations

from tests.billing.helpers import transaction_count
from tests.factories import sign_in_visitor


def test_a_family_adds_money_on_the_wallet_page_and_a_double_submit_adds_it_once(
    client, personas, db
):
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    page = client.get("/wallet")
    assert "No money has moved yet" in page.text
    attempt = page.text.split('name="attempt" value="')[1].split('"')[0]
    form = {
        "csrf_token": client.cookies["ov_csrf"],
        "amount": "12.50",
        "card_number": "4242 4242 4242 4242",
        "attempt": attempt,
    }
    first = client.post("/wallet/deposits", data=form)
    assert first.status_code == 200 and "$12.50 added to your wallet" in first.text
    again = client.post("/wallet/deposits", data=form)
    assert again.status_code == 200
    assert client.get("/api/v1/me/wallet").json()["available_cents"] == 1250
    assert transaction_count(db) == 1


def test_bad_amounts_and_declined_cards_say_why_and_add_nothing(client, personas, db):
    personas.visitor  # noqa: B018
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    client.get("/wallet")
    base = {"csrf_token": client.cookies["ov_csrf"], "card_number": "4242424242424242"}
    for n, amount in enumerate(("", "0", "-5", "12.345", "lots", "5000000")):
        r = client.post(
            "/wallet/deposits", data={**base, "amount": amount, "attempt": f"attempt-{n:04d}"}
        )
        assert r.status_code == 422, amount
        assert "Error:" in r.text and 'id="amount-error"' in r.text, amount
    declined = client.post(
        "/wallet/deposits",
        data={
            **base,
            "amount": "10",
            "card_number": "4000000000000002",
            "attempt": "declined-0001",
        },
    )
    assert declined.status_code == 402
    assert "The card was declined" in declined.text
    assert transaction_count(db) == 0


def test_the_history_downloads_as_csv_oldest_first(client, personas, db):
    import csv
    import io

    from tests.billing.helpers import fund

    fund(db, personas.visitor.id, 20_00, key="first-deposit")
    fund(db, personas.visitor.id, 5_05, key="second-deposit")
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    r = client.get("/api/v1/me/wallet/entries.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["date_utc", "what", "amount_usd", "balance_after_usd", "visit_id"]
    assert [(row[2], row[3]) for row in rows[1:]] == [("20.00", "20.00"), ("5.05", "25.05")]


def test_a_memo_that_looks_like_a_formula_downloads_as_plain_text(client, personas, db):
    import csv
    import io

    from tests.billing.helpers import fund

    for n, memo in enumerate(('=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "\tx", "\ry")):
        fund(db, personas.visitor.id, 1_00 + n, key=f"formula-{n}", memo=memo)
    fund(db, personas.visitor.id, 5_00, key="plain", memo="Added $5.00 by card")
    personas.commit()
    sign_in_visitor(client, personas.visitor)
    rows = list(csv.reader(io.StringIO(client.get("/api/v1/me/wallet/entries.csv").text)))
    assert [row[1] for row in rows[1:]] == [
        '\'=HYPERLINK("http://evil")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\ry",
        "Added $5.00 by card",
    ]
    assert rows[1][2] == "1.00"  # amounts stay numbers
