//! Reading responses: status to error class, `Retry-After`, bounded bodies,
//! transport errors to [`HandlerError`]. Shared by the `consul` handler,
//! which speaks HTTP too.
//!
//! Bodies are read chunk by chunk and the read stops as soon as the total
//! would pass the limit, so a hostile or broken server cannot make the
//! runtime buffer more than `max_response_bytes`; a `Content-Length` over
//! the limit is refused before the first body byte is read.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use onex_core::{ErrorClass, Timestamp};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::error::HandlerError;

/// How much of an error response is read for its excerpt.
const ERROR_BODY_READ_BYTES: u64 = 4 * 1024;
/// How much of an error response is quoted in the error message.
const ERROR_EXCERPT_CHARS: usize = 200;

pub(crate) fn permanent(message: String) -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Permanent, message }
}

pub(crate) fn transient(message: String) -> HandlerError {
    HandlerError::Failed { class: ErrorClass::Transient, message }
}

/// The class of a status that is an error, `None` for a success (1xx-3xx).
///
/// 5xx, 429 and 408 are transient (the server, or its capacity right now, is
/// the problem; 408 is the server timing out our request). 409 and 412 are
/// conflicts (the resource changed under us; the caller re-reads and decides).
/// Every other 4xx is permanent: the same request would fail again.
pub(crate) fn class_of(status: StatusCode) -> Option<ErrorClass> {
    match status.as_u16() {
        0..=399 => None,
        408 | 429 | 500..=599 => Some(ErrorClass::Transient),
        409 | 412 => Some(ErrorClass::Conflict),
        _ => Some(ErrorClass::Permanent),
    }
}

/// The delay a `Retry-After` header asks for: delta-seconds, or an HTTP date relative to `now`
/// (a date in the past means "now": zero). `None` when absent or unparsable.
pub(crate) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    let at_ms = at.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_millis();
    let at = Timestamp::from_unix_millis(i64::try_from(at_ms).ok()?)?;
    Some(now.until(at))
}

/// The error for a response with an error status: its class, the status, a short excerpt of the
/// body, and the server's `Retry-After` on a transient error.
///
/// # Cancel safety
/// Dropping the future abandons the (bounded) read of the excerpt.
pub(crate) async fn status_error(what: &str, response: Response, now: Timestamp) -> HandlerError {
    let status = response.status();
    let class = class_of(status).unwrap_or(ErrorClass::Permanent);
    let hint = retry_after(response.headers(), now);
    let excerpt = excerpt(response).await;
    let reason = status.canonical_reason().unwrap_or("");
    let message = if excerpt.is_empty() {
        format!("{what}: {} {reason}", status.as_u16())
    } else {
        format!("{what}: {} {reason}: {excerpt}", status.as_u16())
    };
    match (class, hint) {
        (ErrorClass::Transient, Some(retry_after)) => HandlerError::RetryLater { message, retry_after },
        _ => HandlerError::Failed { class, message },
    }
}

/// The first characters of an error body, on one line. Reads at most a few KiB.
async fn excerpt(response: Response) -> String {
    let bytes = match read_limited(response, ERROR_BODY_READ_BYTES, Truncate::Yes).await {
        Ok(bytes) => bytes,
        Err(_) => return String::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out: String =
        text.chars().take(ERROR_EXCERPT_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().nth(ERROR_EXCERPT_CHARS).is_some() {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is (or declares to be) over the limit; nothing past the limit was read.
    TooLarge {
        limit: u64,
        declared: Option<u64>,
    },
    Transport(reqwest::Error),
}

/// What to do with a body over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truncate {
    /// Fail with [`BodyError::TooLarge`].
    No,
    /// Return the first `limit` bytes (for error excerpts).
    Yes,
}

/// Reads the body, never buffering more than `limit` bytes.
///
/// # Cancel safety
/// Dropping the future abandons the body; the connection is not reused.
pub(crate) async fn read_limited(mut response: Response, limit: u64, truncate: Truncate) -> Result<Bytes, BodyError> {
    let declared = response.content_length();
    if truncate == Truncate::No && declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge { limit, declared });
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut collected = Collected::default();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        let room = limit_usize - collected.len;
        if chunk.len() > room {
            return match truncate {
                Truncate::No => Err(BodyError::TooLarge { limit, declared }),
                Truncate::Yes => {
                    collected.push(chunk.slice(..room));
                    Ok(collected.into_bytes())
                }
            };
        }
        collected.push(chunk);
    }
    Ok(collected.into_bytes())
}

/// Chunks read so far. Most bodies arrive in one chunk, which is returned without a copy.
#[derive(Default)]
struct Collected {
    first: Option<Bytes>,
    rest: BytesMut,
    len: usize,
}

impl Collected {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(chunk),
            None => self.rest.extend_from_slice(&chunk),
            Some(first) => {
                self.rest.reserve(first.len() + chunk.len());
                self.rest.extend_from_slice(&first);
                self.rest.extend_from_slice(&chunk);
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        self.first.unwrap_or_else(|| self.rest.freeze())
    }
}

impl BodyError {
    /// The handler error for a body that could not be read. Over the limit is permanent: the
    /// server would send the same body again.
    pub(crate) fn into_handler_error(self, what: &str, timeout: Option<Duration>) -> HandlerError {
        match self {
            Self::TooLarge { limit, declared: Some(len) } => permanent(format!(
                "{what}: response body of {len} bytes is over max_response_bytes ({limit}); refused before reading it"
            )),
            Self::TooLarge { limit, declared: None } => permanent(format!(
                "{what}: response body is over max_response_bytes ({limit}); reading stopped at the limit"
            )),
            Self::Transport(e) => transport_error(what, e, timeout),
        }
    }
}

/// The handler error for a failure to send a request or receive its response.
///
/// Connection failures and timeouts are transient; a refused redirect or a request reqwest
/// could not build is permanent. The message names the URL without its query (see
/// `display_url`) and reqwest's cause chain, which does not include header values.
pub(crate) fn transport_error(what: &str, error: reqwest::Error, timeout: Option<Duration>) -> HandlerError {
    // The URL may carry secrets in its query; `what` names it already, redacted.
    let error = error.without_url();
    let cause = root_cause(&error);
    if error.is_connect() {
        transient(format!("{what}: cannot connect: {cause}"))
    } else if error.is_timeout() {
        match timeout {
            Some(after) => HandlerError::Timeout { after },
            None => transient(format!("{what}: timed out: {cause}")),
        }
    } else if error.is_redirect() {
        permanent(format!("{what}: redirect refused: {cause}"))
    } else if error.is_builder() {
        permanent(format!("{what}: invalid request: {cause}"))
    } else {
        // Resets, truncated bodies, protocol errors: the next attempt may well succeed.
        transient(format!("{what}: {cause}"))
    }
}

/// The path of a URL, for error messages of APIs whose host is in the config (no query: it may hold secrets).
pub(crate) fn path_of(url: &url::Url) -> &str {
    url.path()
}

/// The innermost cause, which is the informative one (reqwest's outer layers say "error sending request").
fn root_cause(error: &reqwest::Error) -> String {
    let mut current: &dyn std::error::Error = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
