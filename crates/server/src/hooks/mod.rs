//! HTTP callbacks compatible with nginx-rtmp's notify module: `on_connect`, `on_publish` and `on_play`
//! are asked and their answer decides (see `answer`); the done callbacks, `on_update` and
//! `on_record_done` are told and never wait (see [`notify`]).
//!
//! - `form`: the `application/x-www-form-urlencoded` body nginx-rtmp sends.
//! - `client`: one POST with a timeout, reading only the status and `Location`.
//! - `answer`: what an answer means ([`HookAnswer`] to [`crate::router::Verdict`]).

mod answer;
mod client;
mod form;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Semaphore;

pub use answer::{verdict_for, HookAnswer};
pub use client::post_form;
pub use form::{Call, HookForm};

use crate::router::Verdict;

/// What a hook server that is slow, down or answers garbage means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFailure {
    /// Refuse the request (the default, as nginx-rtmp).
    #[default]
    Deny,
    /// Allow the request.
    Allow,
}

/// The default of `hook_timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
/// The default of `on_update_interval` (seconds, as nginx-rtmp's `notify_update_timeout`).
pub const DEFAULT_UPDATE_INTERVAL_SECS: u64 = 30;
/// How many told callbacks may be in flight at once, server-wide; more are dropped with a log.
const MAX_NOTIFICATIONS_IN_FLIGHT: usize = 64;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);
static NOTIFICATIONS: Semaphore = Semaphore::const_new(MAX_NOTIFICATIONS_IN_FLIGHT);

/// A new connection id (`clientid`), unique in this server process.
pub fn next_client_id() -> u64 {
    NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed)
}

/// `url` without its query (which may hold secrets), for logs.
pub fn url_for_log(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// Asks the hook at `url` and returns the verdict its answer means; a failure is `failure`'s verdict.
/// Logs one line with the result.
pub async fn ask(url: &str, form: &HookForm, timeout: Duration, failure: HookFailure) -> Verdict {
    let started = Instant::now();
    let result = post_form(url, form.encode(), timeout).await;
    let verdict = verdict_for(form.call, &result, failure);
    let latency_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(answer) => tracing::info!(call = form.call.as_str(), url = url_for_log(url),
            status = answer.status, latency_ms, clientid = form.client_id, verdict = ?verdict, "hook"),
        Err(error) => tracing::warn!(call = form.call.as_str(), url = url_for_log(url),
            %error, latency_ms, clientid = form.client_id, verdict = ?verdict, "hook failed"),
    }
    verdict
}

/// Tells the hook at `url` (done callbacks, `on_update`, `on_record_done`) on a task of its own, never
/// waiting; at most a bounded number are in flight server-wide, more are dropped with a log. Needs a
/// Tokio runtime.
pub fn notify(url: Arc<str>, form: HookForm, timeout: Duration) {
    let Ok(permit) = NOTIFICATIONS.try_acquire() else {
        tracing::warn!(
            call = form.call.as_str(),
            url = url_for_log(&url),
            "hook dropped: too many in flight"
        );
        return;
    };
    // The call's line stays inside the caller's span (a connection's, with its id, variant and address).
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let _permit = permit;
            let started = Instant::now();
            let result = post_form(&url, form.encode(), timeout).await;
            let latency_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(answer) => tracing::info!(
                    call = form.call.as_str(),
                    url = url_for_log(&url),
                    status = answer.status,
                    latency_ms,
                    clientid = form.client_id,
                    "hook"
                ),
                Err(error) => tracing::warn!(call = form.call.as_str(), url = url_for_log(&url),
                %error, latency_ms, clientid = form.client_id, "hook failed"),
            }
        },
        span,
    ));
}

/// Sends `on_record_done` for a finished recording, if the application has the hook; for the recorder.
pub fn record_done(config: &crate::config::AppConfig, mut form: HookForm, path: &str) {
    if let Some(url) = &config.on_record_done {
        form.call = Call::RecordDone;
        form.path = Some(path.to_owned());
        notify(url.as_str().into(), form, config.hook_timeout());
    }
}

/// The recorder's `on_record_done`: logs each finished file (as [`LogRecordDone`] does) and, when the
/// application has the hook, tells it on the runtime the recording started on (the recorder closes
/// files on a thread of its own).
///
/// [`LogRecordDone`]: crate::outputs::recorder::LogRecordDone
#[derive(Debug)]
pub struct RecordDoneNotifier {
    config: Arc<crate::config::AppConfig>,
    form: HookForm,
    runtime: Option<tokio::runtime::Handle>,
}

impl RecordDoneNotifier {
    /// For a recording of the stream `form.name`, started now, on this runtime.
    pub fn new(config: Arc<crate::config::AppConfig>, form: HookForm) -> Self {
        Self {
            config,
            form,
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

impl crate::outputs::recorder::RecordDoneHook for RecordDoneNotifier {
    fn record_done(&self, done: &crate::outputs::recorder::RecordDone) {
        crate::outputs::recorder::LogRecordDone.record_done(done);
        let Some(runtime) = &self.runtime else {
            return;
        };
        let _entered = runtime.enter();
        record_done(
            &self.config,
            self.form.clone(),
            &done.path.display().to_string(),
        );
    }
}
