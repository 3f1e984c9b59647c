//! A spanned YAML tree, built from `saphyr-parser` events.
//!
//! Contracts need line and column for every key and value, which a serde
//! deserializer loses, so the loader builds its own small tree and decodes
//! it by hand (see `decode.rs`). The tree is deliberately modest: one
//! document, string keys, anchors expanded in place, no tags beyond `!!str`.
//!
//! Only *plain* scalars are typed (null, bool, int, float, per the YAML 1.2
//! core schema); quoted and block scalars are always strings. Plain strings
//! remember that they were plain ([`Node::plain`]) so that interpolation can
//! re-type them: `timeout_ms: ${T:-30}` becomes the integer 30.
//!
//! Parsing never panics. Problems (a syntax error, duplicate keys, a second
//! document, nesting too deep, alias bombs) become diagnostics.

use std::borrow::Cow;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::diagnostic::{Diagnostic, Severity};

/// Deepest nesting accepted; deeper input is rejected rather than risking the stack.
const MAX_DEPTH: usize = 128;
/// Most nodes a document may expand to (aliases included); guards against alias bombs.
const MAX_NODES: usize = 1_000_000;

/// A line/column position, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: Span) -> Self {
        Self { line: span.start.line(), column: span.start.col() + 1 }
    }
}

/// A map key with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// One YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// True for a plain (unquoted, non-block) scalar: its type was inferred.
    pub plain: bool,
}

impl Node {
    /// The entries of a map, if this is one.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    /// A word for the type of this node, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a map",
        }
    }

    fn count(&self) -> usize {
        match &self.kind {
            Kind::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| v.count()).sum::<usize>(),
            _ => 1,
        }
    }

    /// Converts to JSON (for handler `config` maps). Non-finite floats become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => {
                serde_json::Number::from_f64(*f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            Kind::String(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// Types a plain scalar per the YAML 1.2 core schema.
pub fn type_plain(text: &str) -> Kind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Kind::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Kind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Kind::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Kind::Int(i);
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Kind::Int(i);
        }
    }
    if is_yaml_float(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return Kind::Float(f);
        }
    }
    Kind::String(text.to_owned())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_yaml_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && all_digits(int),
        Some(f) => all_digits(int) && all_digits(f) && (!int.is_empty() || !f.is_empty()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

enum Frame {
    Seq { items: Vec<Node>, pos: Pos, anchor: usize },
    Map { entries: Vec<(Key, Node)>, key: Option<Key>, pos: Pos, anchor: usize },
}

struct Builder<'f> {
    file: &'f Path,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    root: Option<Node>,
    documents: usize,
    nodes: usize,
    diags: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn error(&mut self, pos: Pos, path: String, message: String, hint: Option<String>, fix: Option<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            path,
            message,
            hint,
            fix,
        });
    }

    /// The field path of the value being built, for diagnostics.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq { items, .. } => path.push_str(&format!("[{}]", items.len())),
                Frame::Map { key: Some(k), .. } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&k.name);
                }
                Frame::Map { key: None, .. } => {}
            }
        }
        path
    }

    /// Adds a finished value to its parent. Returns false when building must stop.
    fn push(&mut self, node: Node, anchor: usize) -> bool {
        self.nodes = self.nodes.saturating_add(node.count().min(MAX_NODES));
        if self.nodes > MAX_NODES {
            self.error(
                node.pos,
                self.path(),
                format!("the document expands to more than {MAX_NODES} values"),
                Some("aliases (`*name`) are expanded in place; a chain of them grows exponentially".into()),
                Some("remove the nested aliases".into()),
            );
            return false;
        }
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        let duplicate: Option<(Key, Pos)> = match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                None
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                None
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => match entries.iter().find(|(e, _)| e.name == k.name).map(|(e, _)| e.pos) {
                    Some(first) => Some((k, first)),
                    None => {
                        entries.push((k, node));
                        None
                    }
                },
                None => {
                    let name = match node.kind {
                        Kind::String(name) => name,
                        Kind::Seq(_) | Kind::Map(_) => return self.bad_key(node.pos),
                        other => scalar_text(&other),
                    };
                    *key = Some(Key { name, pos: node.pos });
                    None
                }
            },
        };
        if let Some((k, first)) = duplicate {
            let name = k.name;
            self.error(
                k.pos,
                self.path_with(&name),
                format!("duplicate key `{name}`"),
                Some(format!("`{name}` is already set on line {}; YAML keeps only one of them", first.line)),
                Some(format!("remove one of the two `{name}:` entries")),
            );
        }
        true
    }

    fn bad_key(&mut self, pos: Pos) -> bool {
        self.error(
            pos,
            self.path(),
            "a map key must be a plain string, not a list or map".into(),
            None,
            Some("write the key as a string".into()),
        );
        false
    }

    fn path_with(&self, key: &str) -> String {
        let p = self.path();
        if p.is_empty() { key.to_owned() } else { format!("{p}.{key}") }
    }

    /// Handles one event. Returns false when building must stop.
    fn event(&mut self, event: Event<'_>, span: Span) -> bool {
        let pos = Pos::from_span(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.error(
                        pos,
                        String::new(),
                        "the file holds more than one YAML document".into(),
                        Some("a contract is exactly one document; `---` may only start the first".into()),
                        Some("split the documents into separate files, or remove the extra `---`".into()),
                    );
                    return false;
                }
                true
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_string;
                let kind = if plain { type_plain(&text) } else { Kind::String(text.into_owned()) };
                self.push(Node { kind, pos, plain }, anchor)
            }
            Event::Alias(id) => {
                let found = self.anchors.iter().rev().find(|(a, _)| *a == id).map(|(_, n)| n.clone());
                match found {
                    Some(node) => self.push(node, 0),
                    None => {
                        self.error(
                            pos,
                            self.path(),
                            "alias refers to an unknown anchor".into(),
                            None,
                            Some("define the anchor (`&name`) before using it".into()),
                        );
                        false
                    }
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) if self.stack.len() >= MAX_DEPTH => {
                let _ = anchor;
                self.error(
                    pos,
                    self.path(),
                    format!("nesting is deeper than {MAX_DEPTH} levels"),
                    None,
                    Some("flatten the structure".into()),
                );
                false
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq { items: Vec::new(), pos, anchor });
                true
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { entries: Vec::new(), key: None, pos, anchor });
                true
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => {
                    self.push(Node { kind: Kind::Seq(items), pos, plain: false }, anchor)
                }
                Some(Frame::Map { entries, pos, anchor, .. }) => {
                    self.push(Node { kind: Kind::Map(entries), pos, plain: false }, anchor)
                }
                None => true,
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => true,
        }
    }
}

fn scalar_text(kind: &Kind) -> String {
    match kind {
        Kind::Null => String::new(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Float(f) => f.to_string(),
        Kind::String(s) => s.clone(),
        Kind::Seq(_) | Kind::Map(_) => String::new(),
    }
}

/// Parses `src` (the contents of `file`) into one document.
///
/// Returns the root (a `Null` node for an empty file) and every problem
/// found. When a syntax error is found the root is `None` and the
/// diagnostics hold exactly that error.
pub fn parse(src: &str, file: &Path) -> (Option<Node>, Vec<Diagnostic>) {
    let mut builder =
        Builder { file, stack: Vec::new(), anchors: Vec::new(), root: None, documents: 0, nodes: 0, diags: Vec::new() };
    let mut parser = Parser::new_from_str(src);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => {
                if !builder.event(event, span) {
                    return (None, builder.diags);
                }
            }
            Err(e) => {
                let mark = e.marker();
                let pos = Pos { line: mark.line().max(1), column: mark.col() + 1 };
                let hint = syntax_hint(e.info());
                builder.diags.clear();
                builder.error(
                    pos,
                    String::new(),
                    format!("invalid YAML: {}", e.info()),
                    hint,
                    Some("fix the YAML syntax at this position".into()),
                );
                return (None, builder.diags);
            }
        }
    }
    let root = builder.root.take().unwrap_or(Node { kind: Kind::Null, pos: Pos { line: 1, column: 1 }, plain: true });
    (Some(root), builder.diags)
}

fn syntax_hint(info: &str) -> Option<String> {
    let hint: Cow<'static, str> = if info.contains("tab") {
        "YAML indentation uses spaces, never tabs".into()
    } else if info.contains("mapping values") {
        "a value containing `: ` must be quoted, or the indentation is off".into()
    } else if info.contains("did not find expected") {
        "check the indentation and that every `[`, `{` and quote is closed".into()
    } else {
        return None;
    };
    Some(hint.into_owned())
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn ok(src: &str) -> Node {
        let (root, diags) = parse(src, Path::new("t.yaml"));
        assert!(diags.is_empty(), "{diags:?}");
        root.unwrap_or_else(|| panic!("no root"))
    }

    fn errors(src: &str) -> Vec<Diagnostic> {
        parse(src, Path::new("t.yaml")).1
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_strings() {
        let root = ok("a: 30\nb: \"30\"\nc: true\nd: 'true'\ne: 1.5\nf: ~\ng: hello\nh: 0x1F\n");
        assert_eq!(root.get("a").map(|n| &n.kind), Some(&Kind::Int(30)));
        assert_eq!(root.get("b").map(|n| &n.kind), Some(&Kind::String("30".into())));
        assert_eq!(root.get("c").map(|n| &n.kind), Some(&Kind::Bool(true)));
        assert_eq!(root.get("d").map(|n| &n.kind), Some(&Kind::String("true".into())));
        assert_eq!(root.get("e").map(|n| &n.kind), Some(&Kind::Float(1.5)));
        assert_eq!(root.get("f").map(|n| &n.kind), Some(&Kind::Null));
        assert_eq!(root.get("g").map(|n| &n.kind), Some(&Kind::String("hello".into())));
        assert_eq!(root.get("h").map(|n| &n.kind), Some(&Kind::Int(31)));
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let root = ok("a: yes\nb: off\n");
        assert_eq!(root.get("a").and_then(Node::as_str), Some("yes"));
        assert_eq!(root.get("b").and_then(Node::as_str), Some("off"));
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let root = ok("---\n# comment\nouter:\n  inner: [1, {x: y}]\n");
        let inner = root.get("outer").and_then(|n| n.get("inner"));
        assert_eq!(inner.map(|n| n.pos), Some(Pos { line: 4, column: 10 }));
        let key = root.get("outer").and_then(Node::as_map).and_then(|m| m.first()).map(|(k, _)| k.pos);
        assert_eq!(key, Some(Pos { line: 4, column: 3 }));
    }

    #[test]
    fn block_scalars_keep_magic_line_as_content() {
        let root = ok("d: >\n  Folded text\n  continues. #magic___^_^___line\nl: |\n  a\n  b\n");
        assert_eq!(root.get("d").and_then(Node::as_str), Some("Folded text continues. #magic___^_^___line\n"));
        assert_eq!(root.get("l").and_then(Node::as_str), Some("a\nb\n"));
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let root = ok("topics:\n  - &t \"onex.evt.a.b.v1\"\nx:\n  topic: *t\n");
        assert_eq!(root.get("x").and_then(|n| n.get("topic")).and_then(Node::as_str), Some("onex.evt.a.b.v1"));
    }

    #[test]
    fn non_ascii_utf8_is_kept_and_columns_count_characters() {
        let root = ok("# ┌──┐ box → arrow\nd: \"é — ü\"\ne: x\n");
        assert_eq!(root.get("d").and_then(Node::as_str), Some("é — ü"));
    }

    #[test]
    fn duplicate_keys_are_an_error_at_the_second_key() {
        let diags = errors("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!((diags[0].line, diags[0].column), (3, 1));
        assert!(diags[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn multiple_documents_are_an_error() {
        let diags = errors("a: 1\n---\nb: 2\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, 2);
        assert!(diags[0].message.contains("more than one YAML document"));
    }

    #[test]
    fn syntax_error_is_one_diagnostic_with_its_position() {
        let diags = errors("a: [1, 2\nb: 3\n");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.starts_with("invalid YAML"));
        assert!(diags[0].line >= 1);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let diags = errors(&src);
        assert!(diags.iter().any(|d| d.message.contains("expands to more than")), "{diags:?}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = "[".repeat(200) + &"]".repeat(200);
        let diags = errors(&src);
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn empty_file_is_null() {
        assert_eq!(ok("").kind, Kind::Null);
        assert_eq!(ok("# only a comment\n").kind, Kind::Null);
    }
}
