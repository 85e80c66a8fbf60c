//! Task events: records stored with their task (bodies rendered by the
//! wire adapter, VOD's `ProcedureStateChanged`), delivered by callback
//! (POST, retried with exponential backoff and jitter, in order per task,
//! surviving restarts) and pulled (`PullEvents` / `ConfirmEvents`: a pulled
//! event that is not confirmed in `pull_visibility_secs` can be pulled
//! again; a confirmed one never).
//!
//! Every callback carries `X-Framegate-Event-Id` (receivers deduplicate on
//! it: delivery is at least once) and, with `events.callback_secret`,
//! `X-Framegate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::params::now_ms;
use super::store::{Delivery, NewEvent, PushState, PushTarget, StoreError};
use super::task::NotifyMode;
use super::worker::JobHost;
use super::{JobError, Jobs};

/// Most events one pull returns (VOD's limit).
pub const PULL_BATCH: i64 = 16;
/// How long a pull waits for an event to arrive.
pub const PULL_WAIT: Duration = Duration::from_secs(5);
/// The setting row holding the event configuration set through the API.
const EVENT_CONFIG: &str = "event_config";

/// How events reach the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventMode {
    /// Callbacks to the notification URL (and pulls of the given-up ones).
    Push,
    /// Pulls only.
    Pull,
}

/// The effective callback configuration: the one set through the API,
/// else the file's. Stored under VOD's names since the first version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTarget {
    /// Push or pull.
    #[serde(rename = "Mode")]
    pub mode: EventMode,
    /// Where callbacks go (empty: nowhere).
    #[serde(rename = "NotificationUrl")]
    pub url: String,
}

/// An event handed out by a pull: its handle (for the confirmation) and
/// its body as rendered when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledEvent {
    /// Confirms it.
    pub handle: String,
    /// The rendered event.
    pub body: String,
}

impl Jobs {
    /// Where events are pushed, if anywhere.
    pub async fn callback_target(&self) -> Result<CallbackTarget, StoreError> {
        let stored = self
            .store
            .setting(EVENT_CONFIG)
            .await?
            .and_then(|s| serde_json::from_str::<CallbackTarget>(&s).ok());
        Ok(stored.unwrap_or_else(|| {
            let url = self.events.callback_url.clone();
            let mode = if url.is_empty() {
                EventMode::Pull
            } else {
                EventMode::Push
            };
            CallbackTarget { mode, url }
        }))
    }

    /// The event for a task's new state (`body`, rendered), if its notify
    /// mode wants one.
    pub async fn event_for(
        &self,
        task_id: &str,
        notify_mode: NotifyMode,
        finished: bool,
        body: String,
    ) -> Result<Option<NewEvent>, StoreError> {
        if !notify_mode.wants(finished) {
            return Ok(None);
        }
        let target = self.callback_target().await?;
        Ok(Some(NewEvent {
            event_id: format!("evt-{}", hex::encode(rand::random::<[u8; 12]>())),
            task_id: task_id.to_owned(),
            created_ms: now_ms(),
            body,
            push: target.mode == EventMode::Push && !target.url.is_empty(),
            target: None,
        }))
    }

    /// Records a new event and wakes pullers and the deliverer.
    pub async fn publish(&self, event: Option<NewEvent>) -> Result<(), StoreError> {
        if let Some(event) = event {
            self.store.insert_event(&event).await?;
            self.event_added();
        }
        Ok(())
    }

    /// Wakes long polls and the callback loop.
    pub fn event_added(&self) {
        self.events_notify.notify_waiters();
    }

    /// Up to [`PULL_BATCH`] pullable events, waiting up to [`PULL_WAIT`]
    /// for one.
    pub async fn pull_events(&self) -> Result<Vec<PulledEvent>, JobError> {
        let deadline = tokio::time::Instant::now() + PULL_WAIT;
        let hide = self.events.pull_visibility_secs as i64 * 1000;
        loop {
            let now = now_ms();
            let events = self.store.pull_events(now, now + hide, PULL_BATCH).await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events
                    .into_iter()
                    .map(|(handle, body)| PulledEvent { handle, body })
                    .collect());
            }
            tokio::select! {
                _ = self.events_notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Confirms pulled events: they are never pulled again.
    pub async fn confirm_events(&self, handles: &[String]) -> Result<(), JobError> {
        if handles.len() > PULL_BATCH as usize {
            return Err(JobError::invalid(
                "EventHandles",
                format!("at most {PULL_BATCH} handles per request"),
            ));
        }
        self.store.confirm_events(handles).await?;
        Ok(())
    }

    /// Sets the event mode and notification URL (`None` keeps a value).
    pub async fn set_callback_target(
        &self,
        mode: Option<EventMode>,
        url: Option<String>,
    ) -> Result<(), JobError> {
        let current = self.callback_target().await?;
        let url = url.unwrap_or(current.url);
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(JobError::invalid(
                "NotificationUrl",
                "must be an http:// or https:// URL",
            ));
        }
        let target = CallbackTarget {
            mode: mode.unwrap_or(current.mode),
            url,
        };
        let body = serde_json::to_string(&target).expect("target JSON");
        self.store.set_setting(EVENT_CONFIG, &body).await?;
        Ok(())
    }
}

/// Starts the callback loop and the retention sweep.
pub fn start<H: JobHost>(state: &Arc<H>) {
    let delivery = state.clone();
    tokio::spawn(async move { deliver_loop(delivery).await });
    let sweep = state.clone();
    tokio::spawn(async move {
        let jobs = sweep.jobs();
        while !jobs.stopping.load(Ordering::SeqCst) {
            let before = now_ms() - jobs.events.retention_secs as i64 * 1000;
            match jobs.store.expire_events(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "expired events past their retention"),
                Err(err) => tracing::warn!(error = %err, "expiring events failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = jobs.stopped.notified() => {}
            }
        }
    });
}

async fn deliver_loop<H: JobHost>(state: Arc<H>) {
    let jobs = state.jobs();
    let config = &jobs.events;
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(config.callback_timeout_secs))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "cannot build the callback client; callbacks are off");
            return;
        }
    };
    let hold = (config.callback_timeout_secs as i64 + 5) * 1000;
    while !jobs.stopping.load(Ordering::SeqCst) {
        let now = now_ms();
        let next = match jobs.store.next_delivery(now, now + hold).await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!(error = %err, "reading due callbacks failed");
                None
            }
        };
        let Some(delivery) = next else {
            tokio::select! {
                _ = jobs.events_notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = jobs.stopped.notified() => {}
            }
            continue;
        };
        let target = match delivery.target.clone() {
            Some(target) => target,
            None => match jobs.callback_target().await {
                Ok(target) => PushTarget {
                    url: target.url,
                    content_type: "application/json".into(),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "reading the callback target failed");
                    continue;
                }
            },
        };
        let outcome = post(&client, &target, &config.callback_secret, &delivery).await;
        let attempts = delivery.attempts + 1;
        let (push_state, next_ms, error) = match outcome {
            Ok(()) => (PushState::Delivered, 0, None),
            Err(error) if attempts >= i64::from(config.callback_max_attempts) => {
                tracing::warn!(event = %delivery.event_id, attempts, %error, "callback given up; the event stays pullable");
                (PushState::Failed, 0, Some(error))
            }
            Err(error) => {
                let delay = backoff(
                    attempts,
                    config.callback_backoff_initial_ms,
                    config.callback_backoff_max_secs,
                );
                tracing::info!(event = %delivery.event_id, attempts, retry_in_ms = delay, %error, "callback failed");
                (PushState::Pending, now_ms() + delay as i64, Some(error))
            }
        };
        if push_state == PushState::Delivered {
            tracing::info!(event = %delivery.event_id, attempts, "callback delivered");
        }
        if let Err(err) = jobs
            .store
            .delivery_result(delivery.seq, push_state, next_ms, error.as_deref())
            .await
        {
            tracing::warn!(error = %err, "recording a callback result failed");
        }
    }
}

/// POSTs one event; any 2xx is success.
async fn post(
    client: &reqwest::Client,
    target: &PushTarget,
    secret: &str,
    delivery: &Delivery,
) -> Result<(), String> {
    if target.url.is_empty() {
        return Err("no callback URL is configured".into());
    }
    let body = &delivery.body;
    let mut request = client
        .post(&target.url)
        .header("Content-Type", &target.content_type)
        .header("X-Framegate-Event-Id", &delivery.event_id)
        .body(body.clone());
    if !secret.is_empty() {
        request = request.header(
            "X-Framegate-Signature",
            signature(secret, now_ms() / 1000, body),
        );
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the receiver answered {}", response.status())),
        Err(err) => Err(format!("sending failed: {err}")),
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{unix_seconds}.{body}").as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The delay before retry `attempt` (1-based): `initial · 2^(attempt-1)`,
/// at most `max_secs`, with "equal jitter" (half fixed, half random).
pub fn backoff(attempt: i64, initial_ms: u64, max_secs: u64) -> u64 {
    let exp = initial_ms.saturating_mul(1u64 << (attempt - 1).clamp(0, 30));
    let delay = exp.min(max_secs.saturating_mul(1000)).max(1);
    delay / 2 + rand::random::<u64>() % (delay / 2 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        for attempt in 1..=40 {
            let d = backoff(attempt, 1000, 600);
            let full = (1000u64 << (attempt - 1).min(30)).min(600_000);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d} vs {full}"
            );
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }
}
