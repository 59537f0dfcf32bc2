"""Attachments: round trip, storage, names, types, limits, tenancy, timeline, audit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import undefer

from caseapi.api.app import create_app
from caseapi.attachments.config import AttachmentSettings
from caseapi.attachments.models import Attachment
from caseapi.attachments.names import (
    MAX_FILENAME,
    content_disposition,
    normalize_content_type,
    sanitize_filename,
    served_type,
)
from caseapi.attachments.upload import MULTIPART_OVERHEAD
from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, mint_key, problem
from tests.caseapi.conftest import Database, incident
from tests.caseapi.notification_fixtures import free_port

MAX_SIZE: Final = 64 * 1024
MAX_PER_CASE: Final = 3
#: Bytes no text decoding survives, NUL included.
PNG: Final = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def _app(database: Database, service: CaseService, clock: FakeClock, **settings: Any) -> FastAPI:
    limits = AttachmentSettings(max_size=MAX_SIZE, max_per_case=MAX_PER_CASE, **settings)
    return create_app(
        sessionmaker=database.sessionmaker, case_service=service, clock=clock, attachments=limits
    )


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    return _app(database, service, clock)


@pytest.fixture
async def ref(incidents: IncidentService) -> str:
    return await incidents.open_incident(incident("ntu-1", customer_id="acme"))


@pytest.fixture
async def staff(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(app, role=Role.ENGINEER) as client:
        yield client


@pytest.fixture
async def acme(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as client:
        yield client


async def _upload(
    client: httpx.AsyncClient,
    ref: str,
    name: str = "trace.png",
    data: bytes = PNG,
    content_type: str = "image/png",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/cases/{ref}/attachments", files={"file": (name, data, content_type)}, data=fields
    )


async def _rows(database: Database) -> list[Attachment]:
    async with database.sessionmaker() as session:
        stmt = select(Attachment).order_by(Attachment.id).options(undefer(Attachment.data))
        return list((await session.execute(stmt)).scalars())


async def _timeline(client: httpx.AsyncClient, ref: str) -> list[dict[str, Any]]:
    entries = (await client.get(f"/v1/cases/{ref}/timeline")).json()["data"]
    return [e for e in entries if e["kind"] == "attachment_added"]


async def test_upload_list_download_round_trip(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, ref: str, database: Database
) -> None:
    created = await _upload(staff, ref)
    assert created.status_code == 201, created.text
    body = created.json()
    sha = hashlib.sha256(PNG).hexdigest()
    assert (body["filename"], body["size"], body["sha256"]) == ("trace.png", len(PNG), sha)
    assert (body["visibility"], body["content_type"], body["source"]) == (
        "public",
        "image/png",
        "api",
    )
    assert body["uploaded_by"].startswith("engineer:")
    for client in (staff, acme):
        listing = (await client.get(f"/v1/cases/{ref}/attachments")).json()
        assert [a["id"] for a in listing["data"]] == [body["id"]]
        got = await client.get(f"/v1/cases/{ref}/attachments/{body['id']}")
        assert got.status_code == 200
        assert got.content == PNG and hashlib.sha256(got.content).hexdigest() == sha
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        digest = base64.b64encode(hashlib.sha256(got.content).digest()).decode()
        assert got.headers["repr-digest"] == f"sha-256=:{digest}:"
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"trace.png\"; filename*=UTF-8''trace.png"
        )
    [row] = await _rows(database)
    assert (row.storage, row.stored_name, row.sha256) == ("database", None, sha)
    # Public: on everyone's timeline, with the name.
    [entry] = await _timeline(acme, ref)
    assert entry["data"]["filename"] == "trace.png"
    assert entry["data"]["attachment_id"] == body["id"]
    missing = await staff.get(f"/v1/cases/{ref}/attachments/{body['id'] + 1}")
    problem(missing, 404, "attachment_not_found")


async def test_directory_storage_writes_private_files_and_checks_them_on_read(
    database: Database, service: CaseService, clock: FakeClock, ref: str, tmp_path: Path
) -> None:
    directory = tmp_path / "files" / "attachments"
    app = _app(database, service, clock, directory=directory)
    old_umask = os.umask(0o022)  # a permissive umask must not widen the modes
    try:
        async with authed_client(app, role=Role.ENGINEER) as staff:
            created = await _upload(staff, ref, data=PNG)
            assert created.status_code == 201, created.text
            attachment_id = created.json()["id"]
            [row] = await _rows(database)
            assert (row.storage, row.data) == ("directory", None)
            path = directory / str(row.stored_name)
            assert path.read_bytes() == PNG
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert [p.name for p in directory.iterdir()] == [path.name]  # no partial left
            got = await staff.get(f"/v1/cases/{ref}/attachments/{attachment_id}")
            assert got.content == PNG
            # Altered bytes are never served.
            path.write_bytes(PNG[:-1] + b"!")
            altered = await staff.get(f"/v1/cases/{ref}/attachments/{attachment_id}")
            problem(altered, 500, "attachment_unavailable")
            path.unlink()
            gone = await staff.get(f"/v1/cases/{ref}/attachments/{attachment_id}")
            problem(gone, 500, "attachment_unavailable")
    finally:
        os.umask(old_umask)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("a\x00b.txt", "ab.txt"),
        ("bell\x07\x1b[31m.txt", "bell[31m.txt"),
        ("con.txt", "_con.txt"),
        ("LPT1", "_LPT1"),
        ("name. . .", "name"),
        ("  .hidden ", "hidden"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),  # no right-to-left override
        ("zu\u0308rich.txt", "zürich.txt"),  # NFC
        ("résumé 日本語.pdf", "résumé 日本語.pdf"),
        ("x" * 300 + ".pdf", "x" * (MAX_FILENAME - 4) + ".pdf"),
        ("y" * 300, "y" * MAX_FILENAME),
        ("", "attachment"),
        ("..", "attachment"),
        ("/", "attachment"),
        ("\x00\x01", "attachment"),
    ],
)
def test_file_names_are_sanitized(given: str, stored: str) -> None:
    assert sanitize_filename(given) == stored
    assert len(sanitize_filename(given)) <= MAX_FILENAME


def test_content_types_are_normalized_and_served_only_when_safe() -> None:
    assert normalize_content_type("TEXT/Plain; charset=UTF-8") == "text/plain"
    assert normalize_content_type("") == "application/octet-stream"
    assert normalize_content_type("not a type") == "application/octet-stream"
    assert normalize_content_type("text/html\r\nX-Evil: 1") == "application/octet-stream"
    assert served_type("application/pdf") == "application/pdf"
    for unsafe in ("text/html", "image/svg+xml", "application/xhtml+xml", "application/x-foo"):
        assert served_type(unsafe) == "application/octet-stream"
    header = content_disposition('naïve "q".txt')
    assert header == (
        "attachment; filename=\"na_ve _q_.txt\"; filename*=UTF-8''na%C3%AFve%20%22q%22.txt"
    )


async def test_names_and_html_are_made_harmless_through_the_api(
    staff: httpx.AsyncClient, ref: str
) -> None:
    page = b"<script>alert(1)</script>"
    created = await _upload(staff, ref, "../../etc/page.html", page, "Text/HTML; charset=utf-8")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["filename"], body["content_type"]) == ("page.html", "text/html")
    got = await staff.get(f"/v1/cases/{ref}/attachments/{body['id']}")
    assert got.content == page
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]


async def test_a_file_over_the_limit_is_refused_while_it_arrives(
    staff: httpx.AsyncClient, ref: str, database: Database
) -> None:
    exact = await _upload(staff, ref, data=b"x" * MAX_SIZE)
    assert exact.status_code == 201, exact.text
    problem(await _upload(staff, ref, data=b"x" * (MAX_SIZE + 1)), 413, "attachment_too_large")
    # Streamed without a length: the reading stops at the first chunk past the limit.
    boundary = "b0undary"
    chunk = b"y" * 4096
    total_chunks = 10 * MAX_SIZE // len(chunk)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(total_chunks):
            sent += 1
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await staff.post(
        f"/v1/cases/{ref}/attachments",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    refused = problem(streamed, 413, "attachment_too_large")
    assert refused["max_size"] == MAX_SIZE
    assert sent <= MAX_SIZE // len(chunk) + 2 < total_chunks
    # A declared length past the route's limit is refused before anything is read.
    declared = await staff.post(
        f"/v1/cases/{ref}/attachments",
        content=b"z" * (MAX_SIZE + MULTIPART_OVERHEAD + 1),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert problem(declared, 413, "attachment_too_large")["max_bytes"] == (
        MAX_SIZE + MULTIPART_OVERHEAD
    )
    assert [row.size for row in await _rows(database)] == [MAX_SIZE]


async def test_a_full_case_refuses_one_more(
    staff: httpx.AsyncClient, ref: str, database: Database
) -> None:
    for n in range(MAX_PER_CASE):
        assert (await _upload(staff, ref, f"f{n}.txt")).status_code == 201
    refused = problem(await _upload(staff, ref, "more.txt"), 409, "too_many_attachments")
    assert refused["max_per_case"] == MAX_PER_CASE
    assert len(await _rows(database)) == MAX_PER_CASE


async def test_concurrent_uploads_never_pass_the_count_limit(
    staff: httpx.AsyncClient, ref: str, database: Database
) -> None:
    # All pass the early check together; the case's row lock lets only three in.
    responses = await asyncio.gather(*(_upload(staff, ref, f"r{n}.txt") for n in range(6)))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 3
    assert len(await _rows(database)) == MAX_PER_CASE


#: (request keyword arguments, the field the 422 names)
BAD_UPLOADS: Final[list[tuple[dict[str, Any], str]]] = [
    ({"files": {"file": ("e.txt", b"", "text/plain")}}, "file"),
    ({"files": {"other": ("e.txt", b"x", "text/plain")}}, "other"),
    ({"data": {"visibility": "public"}, "files": {"x": ("a", b"1")}}, "x"),
    ({"json": {"file": "x"}}, "body"),
    ({"files": {"file": ("a.txt", b"x")}, "data": {"visibility": "secret"}}, "visibility"),
    ({"files": {"file": ("a.txt", b"x")}, "data": {"comment": "a\x00b"}}, "comment"),
    ({"files": {"file": ("a.txt", b"x")}, "data": {"comment": "c" * 20_001}}, "comment"),
    (
        {
            "content": b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"'
            b"\r\n\r\nxyz",
            "headers": {"content-type": "multipart/form-data; boundary=b"},
        },
        "body",
    ),
]


async def test_bad_uploads_are_422_naming_the_field(
    staff: httpx.AsyncClient, ref: str, database: Database
) -> None:
    for request_kwargs, field in BAD_UPLOADS:
        response = await staff.post(f"/v1/cases/{ref}/attachments", **request_kwargs)
        refused = problem(response, 422, "validation_error")
        assert refused["errors"][0]["field"] == field, refused
    assert await _rows(database) == []


async def test_tenancy_and_internal_attachments(
    app: FastAPI, staff: httpx.AsyncClient, acme: httpx.AsyncClient, ref: str
) -> None:
    internal = await _upload(staff, ref, "secret-plan.txt", b"s", visibility="internal")
    assert internal.status_code == 201 and internal.json()["visibility"] == "internal"
    public = await _upload(acme, ref, "photo.jpg", b"p", "image/jpeg")
    assert public.status_code == 201 and public.json()["visibility"] == "public"
    internal_id, public_id = internal.json()["id"], public.json()["id"]
    # Customers: public ones only; the internal one does not exist for them.
    listing = (await acme.get(f"/v1/cases/{ref}/attachments")).json()
    assert [a["id"] for a in listing["data"]] == [public_id]
    hidden = await acme.get(f"/v1/cases/{ref}/attachments/{internal_id}")
    problem(hidden, 404, "attachment_not_found")
    assert all(e["data"]["attachment_id"] != internal_id for e in await _timeline(acme, ref))
    problem(await _upload(acme, ref, visibility="internal"), 403, "forbidden")
    # Staff see both; the internal entry holds no file name.
    staff_view = (await staff.get(f"/v1/cases/{ref}/attachments")).json()
    assert [a["id"] for a in staff_view["data"]] == [internal_id, public_id]
    entries = {e["data"]["attachment_id"]: e["data"] for e in await _timeline(staff, ref)}
    assert entries[internal_id]["visibility"] == "internal"
    assert "filename" not in entries[internal_id]
    assert entries[public_id]["author_role"] == "customer"
    # Another customer: the case does not exist, for every route.
    async with authed_client(app, role=Role.CUSTOMER, customer_id="umbrella") as umbrella:
        for response in (
            await _upload(umbrella, ref),
            await umbrella.get(f"/v1/cases/{ref}/attachments"),
            await umbrella.get(f"/v1/cases/{ref}/attachments/{public_id}"),
        ):
            problem(response, 404, "case_not_found")


async def test_a_comment_can_carry_the_file(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, ref: str, database: Database
) -> None:
    note = await _upload(
        staff, ref, "log.txt", b"log", "text/plain", visibility="internal", comment="see log"
    )
    assert note.status_code == 201, note.text
    comment_id = note.json()["comment_id"]
    assert comment_id is not None
    reply = await _upload(acme, ref, "photo.jpg", b"jpg", comment="the LED is red")
    assert reply.status_code == 201, reply.text
    comments = (await staff.get(f"/v1/cases/{ref}/comments")).json()["data"]
    assert [(c["body"], c["visibility"]) for c in comments] == [
        ("see log", "internal"),
        ("the LED is red", "public"),
    ]
    assert comments[0]["attachments"] == [
        {"id": note.json()["id"], "filename": "log.txt", "size": 3}
    ]
    customer_view = (await acme.get(f"/v1/cases/{ref}/comments")).json()["data"]
    assert [c["attachments"][0]["filename"] for c in customer_view] == ["photo.jpg"]
    # One audit row per upload (not one for the comment too), facts only.
    async with database.sessionmaker() as session:
        stmt = select(AuditEvent).where(AuditEvent.target_type == "case").order_by(AuditEvent.id)
        rows = list((await session.execute(stmt)).scalars())
    assert [r.action for r in rows] == ["case.attach", "case.attach"]
    assert rows[0].details == {
        "attachment_id": note.json()["id"],
        "comment_id": comment_id,
        "visibility": "internal",
        "size": 3,
        "content_type": "text/plain",
    }
    assert "log.txt" not in str(rows[0].details)


async def test_customers_cannot_attach_to_a_finished_case(
    app: FastAPI, acme: httpx.AsyncClient, staff: httpx.AsyncClient, database: Database
) -> None:
    created = await acme.post(
        "/v1/cases", json={"type": "general_request", "subject": "other", "summary": "s"}
    )
    ref = created.json()["ref"]
    cancelled = await acme.post(f"/v1/cases/{ref}/cancel", json={"reason": "never mind"})
    assert cancelled.status_code == 200, cancelled.text
    problem(await _upload(acme, ref), 409, "case_closed")
    assert (await _upload(staff, ref)).status_code == 201  # staff may still file things


async def test_attachments_are_immutable_in_the_database(
    staff: httpx.AsyncClient, ref: str, database: Database
) -> None:
    assert (await _upload(staff, ref)).status_code == 201
    for statement in ("UPDATE attachments SET filename = 'x'", "DELETE FROM attachments"):
        with pytest.raises(DBAPIError):
            async with database.engine.begin() as conn:
                await conn.execute(text(statement))
    assert [row.filename for row in await _rows(database)] == ["trace.png"]


def test_settings_are_validated() -> None:
    assert AttachmentSettings(max_size="2MiB").max_size == 2 * 1024 * 1024
    for bad in ({"directory": "relative/dir"}, {"max_size": 0}, {"max_per_case": 0}, {"x": 1}):
        with pytest.raises(ValidationError):
            AttachmentSettings(**bad)


async def test_a_real_server_answers_413_without_reading_the_rest(
    app: FastAPI, ref: str, database: Database
) -> None:
    # Over a real socket (uvicorn): the refusal closes the connection instead of
    # draining a body the client keeps sending, and the client still reads the 413.
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
        )
    )
    task = asyncio.create_task(server.serve(), name="attachments-api")
    while not server.started:  # noqa: ASYNC110 - uvicorn offers only a flag
        await asyncio.sleep(0.01)
    key = await mint_key(app, role=Role.ENGINEER)
    total = 64 * 1024 * 1024
    try:
        sent, answer = await asyncio.to_thread(_post_raw, port, ref, key, total)
    finally:
        server.should_exit = True
        await task
    # What the socket buffers took before the close, not the 64 MiB.
    assert sent < total // 4, sent
    assert await _rows(database) == []
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"connection: close" in head.lower()
    refused = json.loads(payload)
    assert refused["code"] == "attachment_too_large", refused
    # Whichever counter sees the excess first refuses: the upload reader (the file
    # over max_size) or, when one large chunk carries the body past both at once (a
    # loaded machine), the route's body limit (max_size plus the multipart overhead).
    assert refused.get("max_size") == MAX_SIZE or (
        refused.get("max_bytes") == MAX_SIZE + MULTIPART_OVERHEAD
    ), refused


def _post_raw(port: int, ref: str, key: str, total: int) -> tuple[int, bytes]:
    """Send a multipart upload of ``total`` bytes until the server stops taking it;
    return how much was sent and the server's answer."""
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    head = (
        f"POST /v1/cases/{ref}/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    # No length to refuse up front: the upload reader counts the file as it comes.
    chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(part), part))
        try:
            while sent < total:
                sent += sock.send(chunk)
        except OSError:
            pass  # the server closed the connection: expected
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except OSError:
            pass  # a reset after the answer
    return sent, answer
