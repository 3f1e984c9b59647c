//! Bearer-token check for the admin API (RFC 6750), in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured token. Never printed: logs show [`Token::fingerprint`].
#[derive(Clone)]
pub(crate) struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(sha256:{})", self.fingerprint())
    }
}

impl Token {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.as_bytes().to_vec())
    }

    /// The first 6 hex digits of the token's SHA-256: enough to tell tokens apart in logs.
    pub(crate) fn fingerprint(&self) -> String {
        Sha256::digest(&self.0).iter().take(3).map(|b| format!("{b:02x}")).collect()
    }

    fn matches(&self, presented: &[u8]) -> bool {
        // ct_eq on slices of different lengths is false without comparing contents.
        bool::from(self.0.as_slice().ct_eq(presented))
    }
}

/// Lets the request through when no token is configured or the right one is presented.
pub(crate) async fn require(State(token): State<Option<Token>>, request: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(request).await };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer ").map(<[u8]>::to_vec));
    match presented {
        Some(p) if token.matches(&p) => next.run(request).await,
        Some(_) => {
            challenge(r#"Bearer realm="onex", error="invalid_token", error_description="the token is not valid""#)
        }
        None => challenge(r#"Bearer realm="onex""#),
    }
}

fn challenge(value: &'static str) -> Response {
    let mut response =
        (StatusCode::UNAUTHORIZED, "a bearer token is required: `Authorization: Bearer <token>`\n").into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_is_exact_and_the_fingerprint_hides_the_token() {
        let t = Token::new("s3cret");
        assert!(t.matches(b"s3cret"));
        assert!(!t.matches(b"s3cre"));
        assert!(!t.matches(b"s3cret "));
        assert_eq!(t.fingerprint().len(), 6);
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
