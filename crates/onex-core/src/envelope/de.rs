//! Lossless, allocation-lean deserialization of envelopes.
//!
//! serde's `#[serde(flatten)]` would keep unknown fields too, but it buffers
//! the whole object into an intermediate tree first, which doubled the cost
//! of parsing an envelope (the hottest code in the runtime). These visitors
//! read each key once, borrow it when the input allows, and send unknown keys
//! straight to `extra`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};
use serde_json::Map;

use super::{Envelope, Metadata, default_version};

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Generates a map visitor for a struct whose unknown fields go to `extra`.
/// Each known field is listed with the names it may appear under and what it
/// is when absent; a field given twice is an error, as with derived impls.
macro_rules! lossless {
    (
        $ty:ident, $expecting:literal,
        required { $($req:ident: $req_name:literal),* $(,)? }
        optional { $($field:ident: $($name:literal)|+ => $default:expr),* $(,)? }
    ) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct StructVisitor;
                impl<'de> Visitor<'de> for StructVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        $(let mut $req = None;)*
                        $(let mut $field = None;)*
                        let mut extra = Map::new();
                        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                            match key.as_ref() {
                                $($req_name => {
                                    if $req.is_some() {
                                        return Err(A::Error::duplicate_field($req_name));
                                    }
                                    $req = Some(map.next_value()?);
                                })*
                                $($($name)|+ => {
                                    if $field.is_some() {
                                        return Err(A::Error::duplicate_field(stringify!($field)));
                                    }
                                    $field = Some(map.next_value()?);
                                })*
                                _ => {
                                    extra.insert(key.into_owned(), map.next_value()?);
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $req.ok_or_else(|| A::Error::missing_field($req_name))?,)*
                            $($field: $field.unwrap_or_else(|| $default),)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(StructVisitor)
            }
        }
    };
}

lossless! {
    Envelope, "an envelope (a JSON object with at least `envelope_id`)",
    required { envelope_id: "envelope_id" }
    optional {
        envelope_version: "envelope_version" => default_version(),
        correlation_id: "correlation_id" => None,
        causation_id: "causation_id" => None,
        category: "category" => Default::default(),
        source_node: "source_node" => None,
        target_node: "target_node" => None,
        handler_type: "handler_type" => None,
        operation: "operation" => None,
        payload: "payload" => serde_json::Value::Null,
        metadata: "metadata" => Metadata::default(),
        // `envelope_timestamp` is the name real ONEX envelopes use.
        timestamp: "timestamp" | "envelope_timestamp" => None,
        is_response: "is_response" => false,
        success: "success" => None,
        error: "error" => None,
    }
}

lossless! {
    Metadata, "envelope metadata (a JSON object)",
    required {}
    optional {
        traceparent: "traceparent" => None,
        tracestate: "tracestate" => None,
        trace_id: "trace_id" => None,
        span_id: "span_id" => None,
        parent_span_id: "parent_span_id" => None,
        request_id: "request_id" => None,
        headers: "headers" => Default::default(),
        tags: "tags" => Vec::new(),
        priority: "priority" => None,
        partition_key: "partition_key" => None,
        retry_count: "retry_count" => 0,
        max_retries: "max_retries" => None,
        deadline: "deadline" => None,
        ttl_seconds: "ttl_seconds" => None,
    }
}
