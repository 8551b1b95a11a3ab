//! Messages, deliveries and attempts as the API reads them; manual resends.

use super::*;

#[async_trait]
impl MessageStore for SqliteStore {
    async fn create_message(&self, m: &Message, deliveries: &[NewDelivery]) -> StoreResult<()> {
        let (m, deliveries) = (m.clone(), deliveries.to_vec());
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO message ({MESSAGE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    m.id,
                    m.app_id,
                    m.event_id,
                    m.event_type,
                    m.channels.as_ref().map(Json),
                    m.payload,
                    micros(m.created_at),
                    micros(m.expires_at)
                ])
            })
            .map_err(map_err)?;
            insert_deliveries(c, &deliveries, micros(m.created_at))
        })
        .await
    }

    async fn get_message(&self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLS} FROM message WHERE app_id = ?1 AND (id = ?2 OR event_id = ?2) ORDER BY id = ?2 DESC LIMIT 1"
            ))?
            .query_row(params![app_id, key], rows::message)
            .optional()
        })
        .await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        let (app_id, filter, page) = (app_id.to_string(), filter.clone(), page.clone());
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {MESSAGE_COLS} FROM message m WHERE m.app_id = ?"));
            q.params.push(Value::Text(app_id));
            message_filters(&mut q, "m", &filter);
            q.page("m.id", &page);
            Ok(page.finish(q.fetch(c, rows::message)?))
        })
        .await
    }

    async fn schedule_manual(&self, d: &NewDelivery, now: DateTime<Utc>) -> StoreResult<String> {
        let d = d.clone();
        self.write(move |c| {
            // A delivery still on its schedule is simply made due now; a finished one gets one
            // manual attempt, after which it stays finished with that attempt's outcome.
            c.prepare_cached(
                "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, next_trigger, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, 1, ?5, ?5) \
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET next_attempt_at = ?5, parked = 0, \
                 next_trigger = CASE WHEN lease_until > ?5 THEN 2 WHEN status IN (1, 3) THEN next_trigger ELSE 1 END, \
                 updated_at = ?5 \
                 RETURNING id",
            )
            .and_then(|mut s| s.query_row(params![d.id, d.msg_id, d.endpoint_id, d.app_id, micros(now)], |r| r.get(0)))
            .map_err(map_err)
        })
        .await
    }

    async fn get_delivery(&self, msg_id: &str, endpoint_id: &str) -> StoreResult<Option<DeliveryState>> {
        let (msg_id, endpoint_id) = (msg_id.to_string(), endpoint_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = ?1 AND endpoint_id = ?2"
            ))?
            .query_row(params![msg_id, endpoint_id], rows::delivery)
            .optional()
        })
        .await
    }

    async fn list_message_deliveries(&self, msg_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryState>> {
        let (msg_id, page) = (msg_id.to_string(), page.clone());
        self.read(move |c| {
            let mut q = Query::new(&format!("SELECT {DELIVERY_COLS} FROM delivery WHERE msg_id = ?"));
            q.params.push(Value::Text(msg_id));
            q.page("endpoint_id", &page);
            Ok(page.finish(q.fetch(c, rows::delivery)?))
        })
        .await
    }

    async fn list_endpoint_deliveries(
        &self,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<(DeliveryState, Message)>> {
        let (endpoint_id, filter, page) = (endpoint_id.to_string(), filter.clone(), page.clone());
        self.read(move |c| {
            let cols: Vec<String> = DELIVERY_COLS.split(", ").map(|col| format!("d.{col}")).collect();
            let mcols: Vec<String> = MESSAGE_COLS.split(", ").map(|col| format!("m.{col}")).collect();
            let mut q = Query::new(&format!(
                "SELECT {}, {} FROM delivery d JOIN message m ON m.id = d.msg_id WHERE d.endpoint_id = ?",
                cols.join(", "),
                mcols.join(", ")
            ));
            q.params.push(Value::Text(endpoint_id));
            message_filters(&mut q, "m", &filter);
            if let Some(status) = filter.status {
                q.and("d.status = ?", [Value::Integer(status.code())]);
            }
            q.page("d.msg_id", &page);
            let rows = q.fetch(c, |r| Ok((rows::delivery(r)?, rows::message_at(r, 7)?)))?;
            Ok(page.finish(rows))
        })
        .await
    }

    async fn list_attempts(&self, filter: &AttemptFilter, page: &PageRequest) -> StoreResult<Page<Attempt>> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c| {
            let cols: Vec<String> = ATTEMPT_COLS.split(", ").map(|col| format!("a.{col}")).collect();
            let needs_message = filter.event_types.is_some() || filter.channel.is_some();
            let join = if needs_message {
                " JOIN message m ON m.id = a.msg_id"
            } else {
                ""
            };
            let mut q = Query::new(&format!(
                "SELECT {} FROM attempt a{join} WHERE a.app_id = ?",
                cols.join(", ")
            ));
            q.params.push(Value::Text(filter.app_id.clone()));
            if let Some(msg_id) = &filter.msg_id {
                q.and("a.msg_id = ?", [text(msg_id)]);
            }
            if let Some(endpoint_id) = &filter.endpoint_id {
                q.and("a.endpoint_id = ?", [text(endpoint_id)]);
            }
            if let Some(status) = filter.status {
                q.and("a.status = ?", [Value::Integer(status.code())]);
            }
            if let Some(class) = filter.status_code_class {
                if class == 0 {
                    q.and("a.response_status_code = 0", []);
                } else {
                    q.and(
                        "a.response_status_code >= ? AND a.response_status_code < ?",
                        [Value::Integer(class), Value::Integer(class + 100)],
                    );
                }
            }
            if let Some(before) = filter.before {
                q.and("a.created_at < ?", [Value::Integer(micros(before))]);
            }
            if let Some(after) = filter.after {
                q.and("a.created_at > ?", [Value::Integer(micros(after))]);
            }
            if needs_message {
                let mf = MessageFilter {
                    event_types: filter.event_types.clone(),
                    channel: filter.channel.clone(),
                    ..MessageFilter::default()
                };
                message_filters(&mut q, "m", &mf);
            }
            q.page("a.id", &page);
            Ok(page.finish(q.fetch(c, rows::attempt)?))
        })
        .await
    }

    async fn get_attempt(&self, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        let (msg_id, attempt_id) = (msg_id.to_string(), attempt_id.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ATTEMPT_COLS} FROM attempt WHERE id = ?1 AND msg_id = ?2"
            ))?
            .query_row(params![attempt_id, msg_id], rows::attempt)
            .optional()
        })
        .await
    }
}
