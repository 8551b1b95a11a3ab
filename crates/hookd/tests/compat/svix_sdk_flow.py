"""Drives hookd with the official Svix Python SDK, unchanged, through the whole publishing flow.

Run by the Rust integration test `compat::official_svix_python_sdk_runs_unchanged_against_hookd`
with HOOKD_URL, HOOKD_TOKEN and RECEIVER_URL set. Prints one JSON line for the test to check
the delivery against; exits non-zero (with the traceback) on any incompatibility.
"""

import json
import os
import sys
import time

from datetime import datetime, timedelta, timezone

from svix.api import (
    AppPortalAccessIn,
    ApplicationIn,
    ApplicationTokenExpireIn,
    BulkExpungeContentsIn,
    BulkReplayIn,
    EndpointSecretRotateIn,
    EventExampleIn,
    RecoverIn,
    ReplayIn,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointIn,
    EndpointPatch,
    EventTypeIn,
    EventTypeImportOpenApiIn,
    EventTypePatch,
    MessagePrecheckIn,
    MessageAttemptListByMsgOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

url, token, receiver = os.environ["HOOKD_URL"], os.environ["HOOKD_TOKEN"], os.environ["RECEIVER_URL"]
svix = Svix(token, SvixOptions(server_url=url))


def expect_error(kind, status, fn):
    try:
        fn()
    except kind as e:
        assert e.status_code == status, (kind, e.status_code, status)
        return e
    raise AssertionError(f"expected {kind.__name__} {status}")


# Applications
app = svix.application.create(ApplicationIn(name="SDK app", uid="ws_sdk", metadata={"plan": "pro"}))
assert app.id.startswith("app_") and app.uid == "ws_sdk" and app.metadata == {"plan": "pro"}
assert svix.application.get_or_create(ApplicationIn(name="SDK app", uid="ws_sdk")).id == app.id
assert svix.application.get("ws_sdk").id == app.id
assert svix.application.patch(app.id, ApplicationPatch(name="Renamed")).name == "Renamed"
assert svix.application.upsert(app.id, ApplicationIn(name="Upserted", uid="ws_sdk")).name == "Upserted"
assert any(a.id == app.id for a in svix.application.list().data)
err = expect_error(HttpError, 409, lambda: svix.application.create(ApplicationIn(name="dup", uid="ws_sdk")))
assert err.code == "conflict"
expect_error(HttpError, 404, lambda: svix.application.get("ws_missing"))
expect_error(HTTPValidationError, 422, lambda: svix.application.create(ApplicationIn(name="")))

# Event types
et = svix.event_type.create(EventTypeIn(name="content.published", description="Content went live"))
assert et.name == "content.published" and et.archived is False
assert svix.event_type.patch("content.published", EventTypePatch(description="Published")).description == "Published"
assert svix.event_type.get("content.published").description == "Published"
assert any(e.name == "content.published" for e in svix.event_type.list().data)
err = expect_error(HttpError, 409, lambda: svix.event_type.create(EventTypeIn(name="content.published", description="x")))
assert err.code == "event_type_exists"

# Endpoints
ep = svix.endpoint.create(app.id, EndpointIn(url=receiver, uid="main", event_types=["content.published"], description="main"))
assert ep.id.startswith("ep_") and ep.event_types == ["content.published"]
secret = svix.endpoint.get_secret(app.id, "main").key
assert secret.startswith("whsec_")
svix.endpoint.set_headers(app.id, ep.id, EndpointHeadersIn(headers={"X-Workspace": "ws_sdk", "Authorization": "Bearer s3cret"}))
headers = svix.endpoint.get_headers(app.id, ep.id)
assert headers.headers == {"X-Workspace": "ws_sdk"} and headers.sensitive == ["Authorization"], headers
assert svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="patched")).description == "patched"
assert svix.endpoint.get(app.id, "main").id == ep.id
assert [e.id for e in svix.endpoint.list(app.id).data] == [ep.id]
expect_error(HttpError, 404, lambda: svix.endpoint.get(app.id, "ep_missing"))
err = expect_error(HTTPValidationError, 422, lambda: svix.endpoint.create(app.id, EndpointIn(url="not a url")))
assert err.detail[0].loc == ["body", "url"], err.detail

# Messages
payload = {
    "id": "evt_123456",
    "type": "content.published",
    "timestamp": "2026-01-21T12:00:00Z",
    "data": {"content_id": "cnt_1"},
    "metadata": {"workspace_id": "ws_sdk", "user_id": "usr_456"},
}
msg = svix.message.create(app.id, MessageIn(event_type="content.published", event_id="evt_123456", payload=payload))
assert msg.id.startswith("msg_") and msg.event_id == "evt_123456"
# SDK v2 asks for payloads only when told to (with_content defaults to false).
assert svix.message.get(app.id, "evt_123456", MessageGetOptions(with_content=True)).payload == payload
assert svix.message.get(app.id, "evt_123456").payload == {}
listed = svix.message.list(app.id, MessageListOptions(event_types=["content.published"]))
assert [m.id for m in listed.data] == [msg.id]
assert svix.message.list(app.id, MessageListOptions(event_types=["other.type"])).data == []
err = expect_error(HttpError, 409, lambda: svix.message.create(app.id, MessageIn(event_type="content.published", event_id="evt_123456", payload=payload)))

# Attempts: the delivery happens in the background; wait for its record (bounded).
deadline = time.monotonic() + 15
attempts = []
while not attempts and time.monotonic() < deadline:
    attempts = svix.message_attempt.list_by_msg(app.id, msg.id).data
    if not attempts:
        time.sleep(0.05)
assert attempts, "no attempt recorded"
attempt = attempts[0]
assert attempt.response_status_code == 200 and attempt.status == 0 and attempt.status_text == "success"
assert svix.message_attempt.get(app.id, msg.id, attempt.id).id == attempt.id
assert [a.id for a in svix.message_attempt.list_by_endpoint(app.id, ep.id).data] == [attempt.id]
assert svix.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions(status=0)).data
assert [m.id for m in svix.message_attempt.list_attempted_messages(app.id, ep.id).data] == [msg.id]
dests = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
assert [d.id for d in dests] == [ep.id] and dests[0].status_text == "success"
svix.message_attempt.resend(app.id, msg.id, ep.id)

# Endpoint lifecycle routes and background tasks, parsed by the SDK's own models.
stats = svix.endpoint.get_stats(app.id, ep.id)
assert stats.success >= 1 and stats.canceled == 0, stats
attempt_stats = svix.endpoint.get_attempt_stats(app.id, ep.id)
assert attempt_stats.success >= 1 and attempt_stats.fail == 0, attempt_stats
since = datetime.now(timezone.utc) - timedelta(hours=1)
recovered = svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
assert recovered.id.startswith("qtask_") and str(recovered.task) == "endpoint.recover", recovered
replayed = svix.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=since))
assert str(replayed.task) == "endpoint.replay", replayed
bulk = svix.endpoint.bulk_replay(app.id, ep.id, BulkReplayIn(since=since, event_types=["content.published"]))
assert str(bulk.task) == "endpoint.bulk-replay", bulk
task = svix.background_task.get(recovered.id)
assert task.id == recovered.id and isinstance(task.data, dict), task
assert any(t.id == bulk.id for t in svix.background_task.list().data)
example = svix.endpoint.send_example(app.id, ep.id, EventExampleIn(event_type="svix.ping"))
assert example.payload == {"success": True}, example
rotated = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(grace_period_seconds=3600))
assert rotated.key.startswith("whsec_") and rotated.key != secret
assert svix.endpoint.get_secret(app.id, ep.id).key == rotated.key

# Precheck: would anyone receive it? (The endpoint filters on content.published.)
assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="content.published")).active is True
assert svix.message.precheck(app.id, MessagePrecheckIn(event_type="user.created")).active is False

# Event types from an OpenAPI document's webhooks, with groupName.
spec = {
    "openapi": "3.1.0",
    "info": {"title": "SDK", "version": "1"},
    "webhooks": {
        "invoice.paid": {"post": {
            "description": "An invoice was paid",
            "tags": ["billing"],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["invoice_id"],
                "properties": {"invoice_id": {"type": "string"}},
                "examples": [{"invoice_id": "inv_1"}],
            }}}},
        }},
    },
}
dry = svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec=spec, dry_run=True))
assert dry.data.modified == [] and [t.name for t in dry.data.to_modify] == ["invoice.paid"], dry
assert dry.data.to_modify[0].group_name == "billing", dry
done = svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec=spec))
assert done.data.modified == ["invoice.paid"], done
imported = svix.event_type.get("invoice.paid")
assert imported.group_name == "billing" and imported.schemas["1"]["required"] == ["invoice_id"], imported

# Consumer-portal tokens: scoped to the application, logged out, expired all at once.
portal = svix.authentication.app_portal_access(app.id, AppPortalAccessIn(expiry=3600))
assert portal.token.startswith("hk_live_") and portal.token not in portal.url, portal
assert portal.url.startswith(url + "/portal/open?code=hkpl_"), portal
scoped = Svix(portal.token, SvixOptions(server_url=url))
assert scoped.application.get(app.id).id == app.id
expect_error(HttpError, 403, lambda: scoped.application.list())
scoped.authentication.logout()
expect_error(HttpError, 401, lambda: scoped.application.get(app.id))
second = Svix(svix.authentication.app_portal_access(app.id, AppPortalAccessIn()).token, SvixOptions(server_url=url))
assert second.endpoint.get(app.id, ep.id).id == ep.id
# Capabilities, readOnly and sessionId as the SDK sends them; expire-all by session id.
from svix.models import AppPortalCapability
limited = svix.authentication.app_portal_access(
    app.id,
    AppPortalAccessIn(capabilities=[AppPortalCapability.VIEW_BASE, AppPortalCapability.CREATE_ATTEMPTS],
                      read_only=True, session_id="sdk-session"),
)
limited_client = Svix(limited.token, SvixOptions(server_url=url))
assert limited_client.endpoint.get(app.id, ep.id).id == ep.id
svix.authentication.expire_all(app.id, ApplicationTokenExpireIn(session_ids=["sdk-session"]))
expect_error(HttpError, 401, lambda: limited_client.endpoint.get(app.id, ep.id))
assert second.endpoint.get(app.id, ep.id).id == ep.id, "another session's token still works"
svix.authentication.expire_all(app.id, ApplicationTokenExpireIn())
expect_error(HttpError, 401, lambda: second.endpoint.get(app.id, ep.id))

# Expunging: by id (bulk) and everything of the application.
extra = svix.message.create(app.id, MessageIn(event_type="content.published", payload={"secret": "x"}))
bulk_out = svix.message.bulk_expunge_content(app.id, BulkExpungeContentsIn(ids=[extra.id, "msg_unknown"]))
assert str(bulk_out.results[extra.id]) == "expunged" and str(bulk_out.results["msg_unknown"]) == "not-found", bulk_out
purge = svix.message.expunge_all_contents(app.id)
assert purge.id.startswith("qtask_") and str(purge.task) == "application.purge_content", purge

print(json.dumps({"secret": secret, "msg_id": msg.id, "app_id": app.id, "endpoint_id": ep.id}))
sys.stdout.flush()
