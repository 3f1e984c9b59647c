//! W3C trace context (`traceparent`), parsed and formatted without allocating.
//!
//! The runtime reads `metadata.traceparent` of each incoming envelope to join
//! the caller's trace, and writes a new one on the response so the next hop
//! continues it (<https://www.w3.org/TR/trace-context/>). This module only
//! validates and converts; recording spans is the runtime's business, so the
//! core stays free of telemetry crates.

use std::fmt;

/// A valid `traceparent`: who the caller is in which trace.
///
/// Only values that pass [`TraceParent::parse`] exist, so the trace id and
/// parent id are never all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// Why a `traceparent` value was rejected. The runtime then starts a new trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceParentError {
    #[error("traceparent must be `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`")]
    Malformed,
    #[error("traceparent version `ff` is forbidden")]
    ForbiddenVersion,
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    #[error("traceparent parent id is all zeros")]
    ZeroParentId,
}

impl TraceParent {
    /// The flag bit that says the caller sampled (recorded) its span.
    pub const SAMPLED: u8 = 0x01;

    /// A trace context from raw ids.
    ///
    /// # Errors
    /// [`TraceParentError::ZeroTraceId`] / [`TraceParentError::ZeroParentId`]
    /// for all-zero ids, which W3C reserves as invalid.
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Result<Self, TraceParentError> {
        if trace_id == [0; 16] {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self { trace_id, parent_id, flags })
    }

    /// Parses a `traceparent` header value.
    ///
    /// Version `00` must be exactly `00-{trace_id}-{parent_id}-{flags}` in
    /// lower-case hex. A later version is read the way W3C asks of a version-00
    /// parser: the same first four parts, and anything after them only if it
    /// starts with `-`; it is written back out as version `00`.
    ///
    /// # Errors
    /// Why the value is not a valid trace context.
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        let b = value.as_bytes();
        if b.len() < 55 {
            return Err(TraceParentError::Malformed);
        }
        let version = hex_byte(b[0], b[1]).ok_or(TraceParentError::Malformed)?;
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(TraceParentError::Malformed);
        }
        // Version 00 has nothing after the flags; later versions may add `-…`.
        if (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return Err(TraceParentError::Malformed);
        }
        let mut trace_id = [0; 16];
        decode(&b[3..35], &mut trace_id)?;
        let mut parent_id = [0; 8];
        decode(&b[36..52], &mut parent_id)?;
        let flags = hex_byte(b[53], b[54]).ok_or(TraceParentError::Malformed)?;
        Self::new(trace_id, parent_id, flags)
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The caller's span id, 8 bytes.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled its span.
    pub fn sampled(&self) -> bool {
        self.flags & Self::SAMPLED != 0
    }

    /// The trace id as 32 lower-case hex digits, written into `buf` (no allocation).
    pub fn trace_id_hex<'a>(&self, buf: &'a mut [u8; 32]) -> &'a str {
        encode(&self.trace_id, buf)
    }
}

/// Writes the version-00 form, `00-{trace_id}-{parent_id}-{flags}`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Formatted into one buffer: this runs for every response, and per-byte `{:02x}` is slow.
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        encode(&self.trace_id, &mut buf[3..35]);
        encode(&self.parent_id, &mut buf[36..52]);
        encode(&[self.flags], &mut buf[53..55]);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// Writes `bytes` as lower-case hex into `out` (twice as long) and returns it as text.
fn encode<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(out).unwrap_or_default()
}

fn decode(hex: &[u8], out: &mut [u8]) -> Result<(), TraceParentError> {
    for (pair, byte) in hex.chunks_exact(2).zip(out.iter_mut()) {
        *byte = hex_byte(pair[0], pair[1]).ok_or(TraceParentError::Malformed)?;
    }
    Ok(())
}

/// One byte from two lower-case hex digits (W3C forbids upper case).
fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    Some(hex_digit(hi)? << 4 | hex_digit(lo)?)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use proptest::prelude::*;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let t = TraceParent::parse(VALID).unwrap();
        assert_eq!(t.trace_id()[..4], [0x4b, 0xf9, 0x2f, 0x35]);
        assert_eq!(t.parent_id(), [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert!(t.sampled());
        assert_eq!(t.to_string(), VALID);
        assert_eq!(t.trace_id_hex(&mut [0; 32]), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn invalid_traceparents_are_rejected_with_the_reason() {
        let cases = [
            ("", TraceParentError::Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", TraceParentError::Malformed),
            // Upper-case hex is not allowed.
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TraceParentError::Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", TraceParentError::Malformed),
            ("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceParentError::Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", TraceParentError::Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z", TraceParentError::Malformed),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceParentError::ForbiddenVersion),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", TraceParentError::ZeroTraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", TraceParentError::ZeroParentId),
        ];
        for (value, reason) in cases {
            assert_eq!(TraceParent::parse(value), Err(reason), "{value:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_as_version_00_and_written_as_00() {
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-next";
        let t = TraceParent::parse(future).unwrap();
        assert_eq!(t.flags(), 0x03);
        assert_eq!(t.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
        // Only a `-` may follow the flags of a later version.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03x").is_err());
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics_and_valid_values_round_trip(s in ".{0,80}") {
            if let Ok(t) = TraceParent::parse(&s) {
                prop_assert_eq!(TraceParent::parse(&t.to_string()), Ok(t));
            }
        }

        #[test]
        fn any_nonzero_ids_round_trip(trace in any::<[u8; 16]>(), parent in any::<[u8; 8]>(), flags in any::<u8>()) {
            if let Ok(t) = TraceParent::new(trace, parent, flags) {
                prop_assert_eq!(TraceParent::parse(&t.to_string()), Ok(t));
            }
        }
    }
}
