"""Console accounts and sessions: the users service and the database session store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import select

from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Role
from caseapi.users.config import SessionSettings
from caseapi.users.errors import (
    EmailTakenError,
    LoginFailedError,
    UserRequestError,
    WeakPasswordError,
)
from caseapi.users.models import UserSession
from caseapi.users.passwords import MAX_LENGTH, cheap_hasher, check_password, production_hasher
from caseapi.users.service import UserService
from caseapi.users.sessions import DatabaseSessionStore, token_hash
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer
from tests.caseapi.conftest import Database

PASSWORD = "a-long-enough-secret"


@pytest.fixture
def users(database: Database, clock: FakeClock) -> UserService:
    return UserService(sessionmaker=database.sessionmaker, clock=clock, hasher=cheap_hasher())


@pytest.fixture
def store(database: Database, clock: FakeClock) -> DatabaseSessionStore:
    return DatabaseSessionStore(
        sessionmaker=database.sessionmaker,
        clock=clock,
        settings=SessionSettings(idle_timeout=timedelta(minutes=30), lifetime=timedelta(hours=12)),
    )


async def _audit(database: Database) -> list[tuple[str, str, str | None]]:
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars()
        return [(row.action, row.outcome, row.target_id) for row in rows]


def test_production_passwords_are_argon2id_at_rfc_9106_cost() -> None:
    hasher = production_hasher()
    assert hasher.type is Type.ID
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) >= (3, 65536, 4)
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hasher.verify(stored, PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-one", "at least 12"),
        ("x" * (MAX_LENGTH + 1), "at most 1024"),
        ("Password1234", "most common"),
        ("  qwertyuiop123 ", "most common"),
        ("abababababab", "most common"),
        ("alice@example.net", "e-mail"),
    ],
)
def test_the_password_policy_refuses_weak_ones(password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError, match=message) as raised:
        check_password(password, email="Alice@example.net")
    assert raised.value.field == "password"


def test_the_password_policy_takes_a_good_one() -> None:
    assert check_password("xy-" * (MAX_LENGTH // 3)) == "xy-" * (MAX_LENGTH // 3)
    assert check_password("tram-lemon-violin") == "tram-lemon-violin"


async def test_an_account_is_made_with_a_hash_and_a_lower_cased_unique_email(
    database: Database, users: UserService
) -> None:
    user = await users.create_user(
        email=" Alice@Example.NET ",
        display_name="Alice",
        password=PASSWORD,
        role=Role.ENGINEER,
        timezone="Europe/Rome",
        language="it",
    )
    assert (user.email, user.role, user.timezone, user.language) == (
        "alice@example.net",
        "engineer",
        "Europe/Rome",
        "it",
    )
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    with pytest.raises(EmailTakenError):
        await users.create_user(
            email="ALICE@example.net", display_name="A", password=PASSWORD, role="noc"
        )
    assert await _audit(database) == [("user.create", "success", str(user.id))]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"display_name": "  "}, "display_name"),
        ({"role": "service"}, "role"),
        ({"role": "customer"}, "customer"),
        ({"role": "engineer", "customer_id": "cust-1"}, "customer"),
        ({"role": "customer", "customer_id": "nobody"}, "customer"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"language": "de"}, "language"),
        ({"password": "short"}, "password"),
    ],
)
async def test_a_bad_field_is_named_and_nothing_is_stored(
    database: Database, users: UserService, fields: dict[str, str], field: str
) -> None:
    await add_customer(database.sessionmaker, "cust-1")
    given = {
        "email": "bob@example.net",
        "display_name": "Bob",
        "password": PASSWORD,
        "role": "engineer",
        **fields,
    }
    with pytest.raises(UserRequestError) as raised:
        await users.create_user(**given)
    assert raised.value.field == field
    assert await users.list_users() == []


async def test_a_customer_contact_carries_the_customers_tenancy(
    database: Database, users: UserService, store: DatabaseSessionStore
) -> None:
    await add_customer(database.sessionmaker, "cust-1")
    user = await users.create_user(
        email="noc@cust1.example",
        display_name="Cust 1 NOC",
        password=PASSWORD,
        role=Role.CUSTOMER,
        customer_id="cust-1",
    )
    _, web = await store.open(user)
    assert web.principal.role is Role.CUSTOMER and web.principal.customer_id == "cust-1"
    assert web.principal.key_id is None and web.principal.user_id == user.id
    assert web.principal.actor == "customer:noc@cust1.example"


async def test_sign_in_is_one_error_for_every_reason_and_each_is_audited(
    database: Database, users: UserService
) -> None:
    user = await users.create_user(
        email="carol@example.net", display_name="Carol", password=PASSWORD, role="admin"
    )
    failures = []
    for email, password in (("nobody@example.net", PASSWORD), ("carol@example.net", "wrong" * 3)):
        with pytest.raises(LoginFailedError) as raised:
            await users.authenticate(email, password)
        failures.append(str(raised.value))
    await users.set_disabled(user.id, disabled=True, by_user_id=None)
    with pytest.raises(LoginFailedError) as raised:
        await users.authenticate("carol@example.net", PASSWORD)
    failures.append(str(raised.value))
    assert len(set(failures)) == 1
    await users.set_disabled(user.id, disabled=False, by_user_id=None)
    signed_in = await users.authenticate("CAROL@example.net", PASSWORD)
    assert signed_in.last_login_at is not None
    assert [row[:2] for row in await _audit(database)] == [
        ("user.create", "success"),
        ("user.login", "refused"),
        ("user.login", "refused"),
        ("user.update", "success"),
        ("user.login", "refused"),
        ("user.update", "success"),
        ("user.login", "success"),
    ]


async def test_an_unknown_email_costs_a_hash_check_too(
    users: UserService, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    original = PasswordHasher.verify

    def spy(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        checked.append(str(stored)[:10])
        return original(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    with pytest.raises(LoginFailedError):
        await users.authenticate("nobody@example.net", PASSWORD)
    assert checked == ["$argon2id$"]


async def test_a_hash_with_old_parameters_is_redone_at_sign_in(
    database: Database, clock: FakeClock
) -> None:
    old = UserService(sessionmaker=database.sessionmaker, clock=clock, hasher=cheap_hasher())
    user = await old.create_user(
        email="dave@example.net", display_name="Dave", password=PASSWORD, role="noc"
    )
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1, type=Type.ID)
    new = UserService(sessionmaker=database.sessionmaker, clock=clock, hasher=stronger)
    signed_in = await new.authenticate("dave@example.net", PASSWORD)
    assert "m=16,t=2,p=1" in signed_in.password_hash
    assert signed_in.password_hash != user.password_hash
    assert not stronger.check_needs_rehash((await new.get_user(user.id)).password_hash)


async def test_sessions_end_when_idle_at_their_lifetime_and_when_revoked(
    database: Database, users: UserService, store: DatabaseSessionStore, clock: FakeClock
) -> None:
    user = await users.create_user(
        email="erin@example.net", display_name="Erin", password=PASSWORD, role="engineer"
    )
    token, web = await store.open(user)
    assert (await store.lookup(token)) == web
    # Used every 20 minutes: the idle expiry (30 min) keeps moving...
    for _ in range(30):
        clock.advance(timedelta(minutes=20))
        assert await store.lookup(token) is not None
    # ... until the absolute lifetime (12 h after the sign-in).
    clock.advance(timedelta(hours=2))
    assert await store.lookup(token) is None

    idle, _ = await store.open(user)
    clock.advance(timedelta(minutes=30))
    assert await store.lookup(idle) is None

    revoked, _ = await store.open(user)
    await store.revoke(revoked)
    assert await store.lookup(revoked) is None
    assert await store.lookup("not-a-token") is None
    assert await store.lookup("") is None


async def test_a_lookup_writes_at_most_once_a_minute(
    database: Database, users: UserService, store: DatabaseSessionStore, clock: FakeClock
) -> None:
    user = await users.create_user(
        email="fay@example.net", display_name="Fay", password=PASSWORD, role="engineer"
    )
    token, _ = await store.open(user)
    opened = clock.now()

    async def last_seen() -> object:
        async with database.sessionmaker() as session:
            row = await session.scalar(
                select(UserSession).where(UserSession.token_hash == token_hash(token))
            )
            assert row is not None
            return row.last_seen_at

    clock.advance(timedelta(seconds=59))
    await store.lookup(token)
    assert await last_seen() == opened
    clock.advance(timedelta(seconds=1))
    await store.lookup(token)
    assert await last_seen() == clock.now()


async def test_only_the_hash_of_a_token_is_stored(
    database: Database, users: UserService, store: DatabaseSessionStore
) -> None:
    user = await users.create_user(
        email="gil@example.net", display_name="Gil", password=PASSWORD, role="engineer"
    )
    token, web = await store.open(user)
    async with database.sessionmaker() as session:
        row = (await session.execute(select(UserSession))).scalar_one()
    assert row.token_hash == token_hash(token) and token not in row.token_hash
    assert len(token) >= 43  # 256 bits, URL-safe
    assert row.csrf_token == web.csrf_token


async def test_password_changes_disabling_and_role_changes_end_sessions(
    database: Database, users: UserService, store: DatabaseSessionStore
) -> None:
    user = await users.create_user(
        email="hal@example.net", display_name="Hal", password=PASSWORD, role="engineer"
    )
    here, _ = await store.open(user)
    there, _ = await store.open(user)
    await users.change_own_password(
        user.id, current=PASSWORD, new="another-good-secret", keep_token_hash=token_hash(here)
    )
    assert await store.lookup(here) is not None and await store.lookup(there) is None
    with pytest.raises(UserRequestError, match="current_password"):
        await users.change_own_password(user.id, current=PASSWORD, new="yet-another-secret")

    await users.set_role(user.id, role="noc", customer_id=None, by_user_id=None)
    assert await store.lookup(here) is None
    again, _ = await store.open(await users.get_user(user.id))
    assert (await store.lookup(again)) is not None
    assert (await store.lookup(again)).principal.role is Role.NOC  # type: ignore[union-attr]
    await users.reset_password(user.id, new="admin-given-secret")
    assert await store.lookup(again) is None

    last, _ = await store.open(await users.get_user(user.id))
    await users.set_disabled(user.id, disabled=True, by_user_id=None)
    assert await store.lookup(last) is None


async def test_sign_out_everywhere_ends_every_session(
    database: Database, users: UserService, store: DatabaseSessionStore
) -> None:
    user = await users.create_user(
        email="ida@example.net", display_name="Ida", password=PASSWORD, role="engineer"
    )
    tokens = [(await store.open(user))[0] for _ in range(3)]
    assert await store.revoke_all(user.id) == 3
    assert [await store.lookup(token) for token in tokens] == [None, None, None]
    assert (await _audit(database))[-1][:2] == ("user.signout_all", "success")


async def test_an_admin_cannot_disable_or_demote_themselves(users: UserService) -> None:
    admin = await users.create_user(
        email="root@example.net", display_name="Root", password=PASSWORD, role="admin"
    )
    with pytest.raises(UserRequestError, match="own account"):
        await users.set_disabled(admin.id, disabled=True, by_user_id=admin.id)
    with pytest.raises(UserRequestError, match="own role"):
        await users.set_role(admin.id, role="engineer", customer_id=None, by_user_id=admin.id)


def test_session_settings_refuse_an_idle_timeout_past_the_lifetime() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        SessionSettings(idle_timeout=timedelta(hours=13), lifetime=timedelta(hours=12))
    with pytest.raises(ValueError, match="greater than zero"):
        SessionSettings(idle_timeout=timedelta(0))
