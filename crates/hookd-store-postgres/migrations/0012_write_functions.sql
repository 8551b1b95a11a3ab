-- hookd schema, version 12 (PostgreSQL): the two statements that carry every delivery, a
-- publish group's write and a batch of attempt records, become functions whose plans are made
-- once per connection.
--
-- Every connection plans each statement at every call (`plan_cache_mode = force_custom_plan`,
-- set when it connects), so that no plan made for a nearly empty table outlives the table's
-- growth. For these two statements that planning was about a sixth of the server's CPU in the
-- closed loop: each call copied the statement's tree and every array bound to it (the payloads
-- among them). Inside these functions the plans are generic and kept (each function's own
-- settings), and the call that passes the arrays is a plain function call.
--
-- A kept plan must not depend on how big the tables are:
-- - `hookd_write_group` only inserts the rows it is given: its plans read no table.
-- - `hookd_record_attempts` reads deliveries and endpoints by their primary keys, for the ids it
--   is given. With sequential scans, hash joins and merge joins off inside it, each such read
--   is a lookup of the key's index per id, whatever the planner believed the table held when
--   it made the plan; a whole-table plan cannot be chosen.
-- Each function runs inside the caller's statement, so what it writes is still committed all
-- of it or none.

-- A publish group: its messages, their deliveries, the FIFO lanes those open, and a wake-up
-- for the other nodes when some delivery was not taken by the publishing node.
CREATE FUNCTION hookd_write_group(
    m_ids text[], m_app_ids text[], m_event_ids text[], m_event_types text[], m_channels jsonb[],
    m_payloads text[], m_created bigint[], m_expires bigint[],
    d_status smallint, d_ids text[], d_msg_ids text[], d_endpoint_ids text[], d_app_ids text[],
    d_due bigint[], d_leases bigint[], d_tokens bigint[], d_created bigint[], d_lanes int[],
    f_endpoint_ids text[], f_lanes int[], f_app_ids text[],
    wake_channel text, wake boolean
) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO message (id, app_id, event_id, event_type, channels, payload, created_at, expires_at)
    SELECT * FROM UNNEST(m_ids, m_app_ids, m_event_ids, m_event_types, m_channels, m_payloads,
                         m_created, m_expires);
    IF cardinality(d_ids) > 0 THEN
        INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, lease_until,
                              lease_token, created_at, updated_at, lane)
        SELECT u.id, u.msg_id, u.endpoint_id, u.app_id, d_status, u.due, u.lease, u.token,
               u.created, u.created, u.lane
        FROM UNNEST(d_ids, d_msg_ids, d_endpoint_ids, d_app_ids, d_due, d_leases, d_tokens,
                    d_created, d_lanes)
             AS u(id, msg_id, endpoint_id, app_id, due, lease, token, created, lane);
    END IF;
    IF cardinality(f_endpoint_ids) > 0 THEN
        INSERT INTO fifo_lane (endpoint_id, lane, app_id)
        SELECT DISTINCT f.e, f.l, f.a FROM UNNEST(f_endpoint_ids, f_lanes, f_app_ids) AS f(e, l, a)
        ON CONFLICT (endpoint_id, lane) DO NOTHING;
    END IF;
    IF wake THEN
        PERFORM pg_notify(wake_channel, current_schema());
    END IF;
END
$$;

-- A batch of attempt records: a check, then the outbox's events, the attempts, the deliveries
-- and the endpoints' health. Returns whether the check held; when it did not, nothing was
-- written.
--
-- - The check locks the deliveries `l_ids` (sorted, as the caller sends them) in id order, as
--   every writer does, and holds when each exists and still has the lease `l_tokens` names (0:
--   any lease). It compares the locked rows with the arrays element by element, in that order,
--   rather than by a join. Every write is gated on it (a constant condition, evaluated before
--   the write reads a row), so the locks are all taken before any row is written. A claim skips
--   locked rows, so the tokens cannot change before the commit.
-- - The parts write different tables, each reading only its own arrays and rows as they were
--   before the statement, which is all they need (the attempts take their application from
--   their delivery, which no record changes).
-- - An attempt whose delivery is gone (its endpoint or application was deleted while it was in
--   flight) is dropped by the join.
-- - A resend requested while an attempt was in flight (`next_trigger` 2) is not swallowed: a
--   delivery still on its schedule has its next attempt brought forward to the resend's time; a
--   finished one gets one manual attempt.
-- - Endpoint rows whose health would not change are left unwritten (and unlocked).
CREATE FUNCTION hookd_record_attempts(
    o_ids text[], o_kinds text[], o_app_ids text[], o_data jsonb[], o_created bigint[],
    l_ids text[], l_tokens bigint[],
    a_delivery_ids text[], a_ids text[], a_msg_ids text[], a_endpoint_ids text[], a_urls text[],
    a_responses text[], a_codes bigint[], a_durations bigint[], a_statuses smallint[],
    a_triggers smallint[], a_numbers bigint[], a_created bigint[], a_request_headers text[],
    a_response_headers text[],
    u_ids text[], u_statuses smallint[], u_scheduled bigint[], u_next bigint[], u_attempts bigint[],
    u_at bigint[], u_park boolean[],
    h_ids text[], h_modes smallint[], h_at bigint[]
) RETURNS boolean
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    held boolean;
BEGIN
    WITH locked AS MATERIALIZED (SELECT id, lease_token FROM delivery WHERE id = ANY(l_ids)
                                 ORDER BY id FOR UPDATE),
    k AS (SELECT COALESCE(array_agg(id ORDER BY id), '{}') AS ids,
                 COALESCE(array_agg(lease_token ORDER BY id), '{}') AS tokens FROM locked),
    check_ AS (SELECT k.ids = l_ids
                      AND COALESCE((SELECT bool_and(z.want = 0 OR z.want = z.has)
                                    FROM UNNEST(l_tokens, k.tokens) AS z(want, has)), true) AS ok
               FROM k),
    o AS (INSERT INTO outbox (id, kind, app_id, data, created_at)
          SELECT * FROM UNNEST(o_ids, o_kinds, o_app_ids, o_data, o_created)
          WHERE (SELECT ok FROM check_) ON CONFLICT (id) DO NOTHING),
    a AS (INSERT INTO attempt (delivery_id, app_id, id, msg_id, endpoint_id, url, response,
                               response_status_code, response_duration_ms, status, trigger_type,
                               attempt_number, created_at, request_headers, response_headers)
          SELECT u.delivery_id, d.app_id, u.id, u.msg_id, u.endpoint_id, u.url, u.response, u.code,
                 u.duration, u.status, u.trigger_type, u.number, u.created_at,
                 u.request_headers::jsonb, u.response_headers::jsonb
          FROM UNNEST(a_delivery_ids, a_ids, a_msg_ids, a_endpoint_ids, a_urls, a_responses, a_codes,
                      a_durations, a_statuses, a_triggers, a_numbers, a_created, a_request_headers,
                      a_response_headers)
               AS u(delivery_id, id, msg_id, endpoint_id, url, response, code, duration, status,
                    trigger_type, number, created_at, request_headers, response_headers)
          JOIN delivery d ON d.id = u.delivery_id
          WHERE (SELECT ok FROM check_)),
    d AS (UPDATE delivery d SET status = u.status, scheduled_attempts = u.scheduled,
                 total_attempts = d.total_attempts + u.attempts,
                 next_attempt_at = CASE WHEN d.next_trigger = 2 AND u.next IS NOT NULL AND NOT u.park
                                        THEN LEAST(d.next_attempt_at, u.next)
                                        WHEN d.next_trigger = 2 THEN d.next_attempt_at
                                        WHEN u.park THEN NULL ELSE u.next END,
                 next_trigger = CASE WHEN d.next_trigger = 2 AND (u.next IS NULL OR u.park) THEN 1 ELSE 0 END,
                 lease_until = 0,
                 updated_at = u.at, parked = u.park AND d.next_trigger <> 2
          FROM UNNEST(u_ids, u_statuses, u_scheduled, u_next, u_attempts, u_at, u_park)
               AS u(id, status, scheduled, next, attempts, at, park)
          WHERE d.id = u.id AND (SELECT ok FROM check_)),
    e AS (UPDATE endpoint e
          SET failing_since = CASE h.mode WHEN 0 THEN NULL WHEN 1 THEN COALESCE(e.failing_since, h.at) ELSE h.at END
          FROM UNNEST(h_ids, h_modes, h_at) AS h(id, mode, at)
          WHERE e.id = h.id
            AND e.failing_since IS DISTINCT FROM
                (CASE h.mode WHEN 0 THEN NULL WHEN 1 THEN COALESCE(e.failing_since, h.at) ELSE h.at END)
            AND (SELECT ok FROM check_))
    SELECT ok INTO held FROM check_;
    RETURN held;
END
$$;
