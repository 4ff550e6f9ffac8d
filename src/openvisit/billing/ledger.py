"""The one way money moves: ``post`` a balanced, idempotent transaction.

Rules, enforced here and tested by property tests:
* every posting is a whole number of cents, none is zero, and they sum to zero;
* an account that holds a family's money (wallet, hold) never goes below zero:
  on PostgreSQL its row is locked FOR UPDATE before the balance is read (in id
  order, so two posts can't deadlock); SQLite has one writer at a time;
* the idempotency key is unique in the database: a replay with the same content
  returns the transaction already posted, a replay with other content is refused.
Balances are never stored: they are SUMs over entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_DOWN, Decimal
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import QueryableAttribute, Session, make_transient_to_detached

from openvisit.audit.service import SYSTEM, AuditActor
from openvisit.billing.models import (
    NEVER_NEGATIVE,
    AccountKind,
    BillingSettlement,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from openvisit.clock import Clock
from openvisit.errors import Code, Conflict, DomainError, InvalidInput

# Far beyond any real amount, far below BigInteger's limit: a bug, not a payment.
MAX_POSTING_CENTS = 10**12
_LOCK_ACCOUNTS = (
    select(LedgerAccount.id)
    .where(LedgerAccount.id.in_(bindparam("ids", expanding=True)))
    .order_by(LedgerAccount.id)
    .with_for_update()
)
# INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, built once per dialect.
_INSERT_TRANSACTION = {
    name: dialect.insert(LedgerTransaction)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(LedgerTransaction.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_ACCOUNTS_BY_KEY = select(LedgerAccount).where(
    LedgerAccount.owner_key.in_(bindparam("keys", expanding=True))
)
_BALANCE = select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
    LedgerEntry.account_id == bindparam("account_id")
)
Posting = tuple[LedgerAccount, int]


class IdempotencyConflict(Conflict):
    code = Code.IDEMPOTENCY_CONFLICT
    message = (
        "This request's key was already used for a different operation. "
        "Use a new key for a new operation."
    )


class InsufficientFunds(DomainError):
    code = Code.INSUFFICIENT_FUNDS
    message = "There is not enough money available in the wallet."


def cents_half_down(value: Decimal) -> int:
    """Round a Decimal amount of cents to a whole cent, halves going down (DESIGN §4)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_DOWN))


def dollars(cents: int) -> str:
    """Cents in plain words: 1250 -> "$12.50", -5 -> "-$0.05"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def owner_key(kind: AccountKind, owner_id: int | None) -> str:
    return f"{kind.value}:{owner_id}" if owner_id is not None else kind.value


def account(
    session: Session,
    clock: Clock,
    kind: AccountKind,
    *,
    visitor_id: int | None = None,
    facility_id: int | None = None,
) -> LedgerAccount:
    """The account of this kind and owner, opened on first use (safely under races)."""
    key = owner_key(kind, visitor_id if visitor_id is not None else facility_id)
    row = session.scalar(select(LedgerAccount).where(LedgerAccount.owner_key == key))
    if row is not None:
        return row
    session.execute(
        _insert(session, LedgerAccount)
        .values(
            kind=kind,
            owner_key=key,
            visitor_id=visitor_id,
            facility_id=facility_id,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["owner_key"])
    )
    row = session.scalar(select(LedgerAccount).where(LedgerAccount.owner_key == key))
    if row is None:  # pragma: no cover - the insert or a concurrent one made it
        raise RuntimeError(f"ledger account {key} could not be opened")
    return row


def accounts(
    session: Session, clock: Clock, wanted: Sequence[tuple[AccountKind, int]]
) -> list[LedgerAccount]:
    """Several visitor accounts (kind, visitor id) in one query, opening any missing."""
    keys = [owner_key(kind, owner) for kind, owner in wanted]
    found = {
        a.owner_key: a
        for a in session.scalars(
            _ACCOUNTS_BY_KEY, {"keys": keys}, execution_options={"populate_existing": False}
        )
    }
    return [
        found.get(k) or account(session, clock, kind, visitor_id=owner)
        for k, (kind, owner) in zip(keys, wanted, strict=True)
    ]


def lock_accounts(session: Session, account_ids: Sequence[int]) -> None:
    """Row-lock accounts in id order until the transaction ends (PostgreSQL; SQLite's
    transactions already hold the single write lock)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_ACCOUNTS, {"ids": sorted(account_ids)})


def find_account(session: Session, kind: AccountKind, owner_id: int | None) -> LedgerAccount | None:
    return session.scalar(
        select(LedgerAccount).where(LedgerAccount.owner_key == owner_key(kind, owner_id))
    )


def balance(session: Session, account_id: int | None) -> int:
    if account_id is None:
        return 0
    return int(session.execute(_BALANCE, {"account_id": account_id}).scalar_one())


def total_cents(session: Session, *where: ColumnElement[bool]) -> int:
    """The sum of the entries that ``where`` picks out; it may name an entry's transaction
    and account."""
    return int(
        session.execute(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(*where)
        ).scalar_one()
    )


def digest(kind: str, postings: Sequence[Posting], visit_id: int | None, extra: Any) -> str:
    body = {
        "kind": kind,
        "visit_id": visit_id,
        "postings": sorted([a.owner_key, amount] for a, amount in postings),
        "extra": extra,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_transaction(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))


def _same_or_refuse(existing: LedgerTransaction, wanted: str) -> LedgerTransaction:
    if existing.digest != wanted:
        raise IdempotencyConflict(key=existing.idempotency_key)
    return existing


def check_postings(postings: Sequence[Posting]) -> None:
    if not postings:
        raise InvalidInput("A transaction needs at least two entries.", code=Code.UNBALANCED)
    for _account, amount in postings:
        if type(amount) is not int or amount == 0 or abs(amount) > MAX_POSTING_CENTS:
            raise InvalidInput(
                "Amounts are whole, non-zero numbers of cents.", code=Code.INVALID_AMOUNT
            )
    if sum(amount for _a, amount in postings) != 0:
        raise InvalidInput("The entries of a transaction must sum to zero.", code=Code.UNBALANCED)


def post(
    session: Session,
    clock: Clock,
    key: str,
    kind: str,
    postings: Sequence[Posting],
    memo: str = "",
    *,
    visit_id: int | None = None,
    facility_id: int | None = None,
    actor: AuditActor = SYSTEM,
    extra: Any = None,
) -> LedgerTransaction:
    """Post one balanced transaction under ``key``, exactly once.

    ``extra`` is whatever else identifies the operation (e.g. the card's last
    digits): it goes into the digest, so a replay must match it too.
    """
    if not key or len(key) > 160:
        raise InvalidInput("An idempotency key of 1 to 160 characters is needed.")
    check_postings(postings)
    wanted = digest(kind, postings, visit_id, extra)
    conn = session.connection()
    net: dict[int, int] = {}
    for acct, amount in postings:
        net[acct.id] = net.get(acct.id, 0) + amount
    guarded = sorted(
        {acct.id for acct, _ in postings if acct.kind in NEVER_NEGATIVE and net[acct.id] < 0}
    )
    if guarded:
        # Lock first, then read: the balance is read in a statement that starts after
        # any concurrent post to these accounts has committed.
        lock_accounts(session, guarded)
    for account_id in guarded:
        have = int(conn.execute(_BALANCE, {"account_id": account_id}).scalar_one())
        if have + net[account_id] < 0:
            existing = find_transaction(session, key)
            if existing is not None:  # a replay of something already done
                return _same_or_refuse(existing, wanted)
            raise InsufficientFunds(available_cents=have, needed_cents=-net[account_id])

    values = {
        "idempotency_key": key,
        "kind": kind,
        "digest": wanted,
        "created_at": clock.now(),
        "memo": memo[:500],
        "visit_id": visit_id,
        "facility_id": facility_id,
        "actor_type": actor.type,
        "actor_id": actor.id,
    }
    new_id = conn.execute(_INSERT_TRANSACTION[conn.dialect.name], values).scalar()
    if new_id is None:  # done before (a replay), or by someone else meanwhile, with this key
        existing = find_transaction(session, key)
        if existing is None:  # pragma: no cover
            raise RuntimeError(f"ledger transaction {key} vanished")
        return _same_or_refuse(existing, wanted)
    conn.execute(
        insert(LedgerEntry),
        [
            {"transaction_id": new_id, "account_id": acct.id, "amount_cents": amount}
            for acct, amount in postings
        ],
    )
    # The row is known: attach it to the session without reading it back.
    txn = LedgerTransaction(id=new_id, **values)
    make_transient_to_detached(txn)
    session.add(txn)
    return txn


# --- invariants --------------------------------------------------------------------------

_SAMPLE = 20  # how many offenders a report names; the check stops looking after that


@dataclass(frozen=True)
class InvariantReport:
    """What ``check_invariants`` found. Each list names at most a few offenders."""

    entries_total_cents: int
    unbalanced_transactions: list[int]  # transaction ids whose entries don't sum to zero
    negative_accounts: list[tuple[str, int]]  # (owner key, balance) of a wallet or hold < 0
    unsettled_holds: list[tuple[int, int]]  # (visit id, cents still held) of settled visits

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[str]:
        found = []
        if self.entries_total_cents != 0:
            found.append(f"all entries sum to {self.entries_total_cents} cents, not 0")
        found += [f"transaction {t} is unbalanced" for t in self.unbalanced_transactions]
        found += [f"account {k} is at {c} cents" for k, c in self.negative_accounts]
        found += [
            f"visit {v} is settled but {c} cents are still held" for v, c in self.unsettled_holds
        ]
        return found


Columns = TypeVarTuple("Columns")


def _first_groups_breaking(
    session: Session,
    query: Select[*Columns],
    key: QueryableAttribute[Any],
    broken: ColumnElement[bool],
    *grouped_too: QueryableAttribute[Any],
) -> Sequence[Row[*Columns]]:
    """The first groups of ``query`` by ``key`` (at most _SAMPLE, in key order) whose entries
    break a rule: enough to name, without reading every offender of a badly broken ledger."""
    return session.execute(
        query.group_by(key, *grouped_too).having(broken).order_by(key).limit(_SAMPLE)
    ).all()


def check_invariants(session: Session) -> InvariantReport:
    """Check the ledger's invariants over every entry (DESIGN §4): all entries sum to zero,
    and so do each transaction's; no wallet or hold account is below zero; a settled visit
    holds nothing. Four aggregate queries, each one pass over the entries."""
    if session.get_bind().dialect.name == "postgresql":
        # Hash aggregates over a million entries want more than the 4 MB default; LOCAL
        # ends with the caller's transaction.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    entries = func.sum(LedgerEntry.amount_cents)
    total = session.scalar(select(func.coalesce(entries, 0)))
    unbalanced = _first_groups_breaking(
        session, select(LedgerEntry.transaction_id), LedgerEntry.transaction_id, entries != 0
    )
    negative = _first_groups_breaking(
        session,
        select(LedgerAccount.owner_key, entries)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind.in_(sorted(NEVER_NEGATIVE))),
        LedgerAccount.id,
        entries < 0,
        LedgerAccount.owner_key,
    )
    unsettled = _first_groups_breaking(
        session,
        select(LedgerTransaction.visit_id, entries)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(BillingSettlement, BillingSettlement.visit_id == LedgerTransaction.visit_id)
        .where(LedgerAccount.kind == AccountKind.VISITOR_HOLD),
        LedgerTransaction.visit_id,
        entries != 0,
    )
    return InvariantReport(
        entries_total_cents=int(total or 0),
        unbalanced_transactions=[int(t) for (t,) in unbalanced],
        negative_accounts=[(str(k), int(c)) for k, c in negative],
        unsettled_holds=[(v, int(c)) for v, c in unsettled if v is not None],
    )
