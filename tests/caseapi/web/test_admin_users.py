"""``/admin/users``: the admin's pages over the users service."""

from __future__ import annotations

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.users.service import UserService
from tests.caseapi.web.pages import anonymous, login_as, make_user, sign_in

NEW = {
    "email": "New.Person@Example.net",
    "display_name": "New Person",
    "role": "noc",
    "customer": "",
    "timezone": "Europe/Rome",
    "language": "it",
    "password": "a-first-good-secret",
}


def users(app: FastAPI) -> UserService:
    service: UserService = app.state.user_service
    return service


async def test_an_admin_lists_and_creates_accounts(app: FastAPI) -> None:
    async with login_as(app, role=Role.ADMIN) as admin:
        page = await admin.get("/admin/users")
        assert page.status_code == 200
        assert 'data-test="user-list"' in page.text and "admin-1@example.net" in page.text
        created = await admin.post("/admin/users", NEW)
        assert created.status_code == 303
        assert created.headers["location"] == "/admin/users?done=created"
        listed = await admin.get("/admin/users?done=created")
    assert "The account is created." in listed.text
    assert 'data-email="new.person@example.net"' in listed.text
    user = await users(app).find_user("new.person@example.net")
    assert (user.role, user.timezone, user.language) == ("noc", "Europe/Rome", "it")
    async with anonymous(app) as client:
        assert (await sign_in(client, "new.person@example.net", NEW["password"])).status_code == 303


async def test_a_refused_account_shows_the_field_and_keeps_the_input(app: FastAPI) -> None:
    async with login_as(app, role=Role.ADMIN) as admin:
        customerless = await admin.post("/admin/users", {**NEW, "role": "customer"})
        weak = await admin.post("/admin/users", {**NEW, "password": "too-short"})
        await admin.post("/admin/users", NEW)
        taken = await admin.post("/admin/users", {**NEW, "email": "NEW.person@example.net"})
        unknown = await admin.post(
            "/admin/users", {**NEW, "role": "customer", "customer": "no-such-customer"}
        )
    assert (
        customerless.status_code == 422
        and "customer: a customer contact needs" in customerless.text
    )
    assert weak.status_code == 422 and "password: must be at least 12" in weak.text
    assert 'value="New Person"' in weak.text and "too-short" not in weak.text
    assert taken.status_code == 409 and "exists already" in taken.text
    assert unknown.status_code == 422 and "no-such-customer" in unknown.text
    assert len(await users(app).list_users()) == 2  # the admin and the one made


async def test_an_admin_disables_enables_resets_and_changes_a_role(app: FastAPI) -> None:
    target = await make_user(app, role=Role.ENGINEER, name="worker")
    async with (
        login_as(app, role=Role.ADMIN) as admin,
        login_as(app, role=Role.ENGINEER, name="worker") as worker,
    ):
        page = await admin.get(f"/admin/users/{target.id}")
        assert page.status_code == 200 and "worker@example.net" in page.text

        disabled = await admin.post(f"/admin/users/{target.id}/disable")
        assert disabled.headers["location"] == f"/admin/users/{target.id}?done=disabled"
        assert (await worker.get("/account")).status_code == 303  # signed out at once
        async with anonymous(app) as client:
            assert (await sign_in(client, "worker@example.net")).status_code == 401
        await admin.post(f"/admin/users/{target.id}/enable")
        assert not (await users(app).get_user(target.id)).disabled

        weak = await admin.post(f"/admin/users/{target.id}/password", {"new_password": "short"})
        assert weak.status_code == 422 and "at least 12" in weak.text
        reset = await admin.post(
            f"/admin/users/{target.id}/password", {"new_password": "admin-chosen-secret"}
        )
        assert reset.status_code == 303
        async with anonymous(app) as client:
            response = await sign_in(client, "worker@example.net", "admin-chosen-secret")
            assert response.status_code == 303

        bad = await admin.post(f"/admin/users/{target.id}/role", {"role": "customer"})
        assert bad.status_code == 422 and "customer" in bad.text
        role = await admin.post(
            f"/admin/users/{target.id}/role", {"role": "customer", "customer": "cust-1"}
        )
        assert role.status_code == 303
    changed = await users(app).get_user(target.id)
    assert (changed.role, changed.customer_id) == ("customer", "cust-1")


async def test_an_admin_cannot_disable_themselves_and_unknown_ids_are_404(app: FastAPI) -> None:
    async with login_as(app, role=Role.ADMIN) as admin:
        own = admin.session.user_id
        refused = await admin.post(f"/admin/users/{own}/disable")
        assert refused.status_code == 422 and "your own account" in refused.text
        assert (await admin.get("/account")).status_code == 200
        assert (await admin.get("/admin/users/9999")).status_code == 404
        assert (await admin.post("/admin/users/9999/disable")).status_code == 404


async def test_the_user_pages_are_for_admins_only(app: FastAPI) -> None:
    target = await make_user(app, role=Role.ENGINEER, name="worker")
    for role, customer in ((Role.ENGINEER, None), (Role.NOC, None), (Role.CUSTOMER, "cust-1")):
        async with login_as(app, role=role, customer_id=customer) as person:
            assert (await person.get("/admin/users")).status_code == 403
            refused = await person.post(f"/admin/users/{target.id}/disable")
            assert refused.status_code == 403
    assert not (await users(app).get_user(target.id)).disabled
