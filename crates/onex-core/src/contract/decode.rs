//! Typed reading of the YAML tree that collects diagnostics instead of stopping.
//!
//! Every getter returns `Option`: `None` means "absent or wrong", and in the
//! wrong case a diagnostic with position, field path, hint and fix has been
//! recorded. Callers carry on with defaults, so one run reports every problem
//! of a file. Unknown keys are reported by [`Decoder::deny_unknown`] with a
//! "did you mean" from the edit distance to the allowed keys.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Severity};
use super::yaml::{Key, Kind, Node, Pos};
use crate::topic::{TopicConvention, TopicName};

/// `path.key`, or `key` at the root.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Levenshtein distance in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(&word.to_ascii_lowercase(), c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A string value with its position and field path.
pub type Located = (String, Pos, String);

/// The entries of a YAML map being decoded.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'n> {
    pub node: &'n Node,
    pub entries: &'n [(Key, Node)],
}

impl<'n> Fields<'n> {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// The value under the first of `keys` present, with the key used.
    pub fn get_any(&self, keys: &[&'static str]) -> Option<(&'static str, &'n Node)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    /// Where `key` is written, or where the map starts.
    pub fn key_pos(&self, key: &str) -> Pos {
        self.entries.iter().find(|(k, _)| k.name == key).map_or(self.node.pos, |(k, _)| k.pos)
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// Collects diagnostics for one file while decoding it.
#[derive(Debug)]
pub struct Decoder<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
}

impl<'a> Decoder<'a> {
    pub fn new(file: &'a Path) -> Self {
        Self { file, diags: Vec::new() }
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags
    }

    /// Errors recorded so far; a decoder compares counts to tell whether a part it read was clean.
    pub fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// Whether any error has been recorded.
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn extend(&mut self, diags: impl IntoIterator<Item = Diagnostic>) {
        self.diags.extend(diags);
    }

    fn record(
        &mut self,
        severity: Severity,
        pos: Pos,
        path: &str,
        message: String,
        hint: Option<String>,
        fix: Option<String>,
    ) {
        self.diags.push(Diagnostic {
            severity,
            file: PathBuf::from(self.file),
            line: pos.line,
            column: pos.column,
            path: path.to_owned(),
            message,
            hint,
            fix,
        });
    }

    pub fn error(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>, fix: Option<String>) {
        self.record(Severity::Error, pos, path, message, hint, fix);
    }

    pub fn warning(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>, fix: Option<String>) {
        self.record(Severity::Warning, pos, path, message, hint, fix);
    }

    pub fn info(&mut self, pos: Pos, path: &str, message: String, hint: Option<String>, fix: Option<String>) {
        self.record(Severity::Info, pos, path, message, hint, fix);
    }

    fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let hint = match &node.kind {
            Kind::String(s) if !node.plain && !matches!(super::yaml::type_plain(s), Kind::String(_)) => {
                Some(format!("`{s}` is quoted, which makes it a string"))
            }
            Kind::Float(_) | Kind::Int(_) | Kind::Bool(_) if expected == "a string" => {
                Some("unquoted, YAML reads this as a number or boolean".into())
            }
            _ => None,
        };
        let fix = match (&node.kind, expected) {
            (Kind::String(s), _) if hint.is_some() => format!("remove the quotes: `{s}`"),
            (_, "a string") => "put the value in quotes".into(),
            _ => format!("write {expected} here"),
        };
        self.error(
            node.pos,
            path,
            format!("`{}` must be {expected}, found {}", last_segment(path), node.type_name()),
            hint,
            Some(fix),
        );
    }

    /// A map; reports any other type.
    pub fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        match &node.kind {
            Kind::Map(entries) => Some(Fields { node, entries }),
            _ => {
                self.wrong_type(node, path, "a map");
                None
            }
        }
    }

    /// A list; reports any other type.
    pub fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, path, "a list");
                None
            }
        }
    }

    /// A string; reports any other type (numbers are not silently converted).
    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            Kind::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(node, path, "a string");
                None
            }
        }
    }

    /// A non-empty string.
    pub fn non_empty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error(
                node.pos,
                path,
                format!("`{}` must not be empty", last_segment(path)),
                None,
                Some("write a value".into()),
            );
            return None;
        }
        Some(s)
    }

    /// A string, or a list of strings (`one or many`).
    pub fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<Located>> {
        match &node.kind {
            Kind::String(s) => Some(vec![(s.clone(), node.pos, path.to_owned())]),
            Kind::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let p = index(path, i);
                    if let Some(s) = self.string(item, &p) {
                        out.push((s, item.pos, p));
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(node, path, "a string or a list of strings");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, path, "`true` or `false`");
                None
            }
        }
    }

    /// An integer within `range`.
    pub fn int(&mut self, node: &Node, path: &str, range: RangeInclusive<i64>) -> Option<i64> {
        let Kind::Int(i) = node.kind else {
            self.wrong_type(node, path, "an integer");
            return None;
        };
        if !range.contains(&i) {
            let bounds = if *range.end() == i64::MAX {
                format!("at least {}", range.start())
            } else {
                format!("between {} and {}", range.start(), range.end())
            };
            self.error(
                node.pos,
                path,
                format!("`{}` is {i}; it must be {bounds}", last_segment(path)),
                None,
                Some(format!("write a value {bounds}")),
            );
            return None;
        }
        Some(i)
    }

    /// A number greater than `min` (integers accepted).
    pub fn float_above(&mut self, node: &Node, path: &str, min: f64) -> Option<f64> {
        let f = match node.kind {
            Kind::Float(f) => f,
            #[allow(clippy::cast_precision_loss, reason = "contract numbers are small")]
            Kind::Int(i) => i as f64,
            _ => {
                self.wrong_type(node, path, "a number");
                return None;
            }
        };
        if !f.is_finite() || f <= min {
            self.error(
                node.pos,
                path,
                format!("`{}` is {f}; it must be a finite number greater than {min}", last_segment(path)),
                None,
                Some(format!("write a number greater than {min}")),
            );
            return None;
        }
        Some(f)
    }

    /// One of `allowed` (compared case-insensitively); returns the allowed spelling.
    pub fn one_of(&mut self, node: &Node, path: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let s = self.string(node, path)?;
        if let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&s)) {
            return Some(found);
        }
        let guess = did_you_mean(&s, allowed);
        self.error(
            node.pos,
            path,
            format!("`{}` is `{s}`, which is not one of: {}", last_segment(path), allowed.join(", ")),
            guess.map(|g| format!("did you mean `{g}`?")),
            Some(format!("write one of: {}", allowed.join(", "))),
        );
        None
    }

    /// A topic name under `convention`; `None` accepts either convention
    /// (a node contract validated on its own, without a runtime contract).
    pub fn topic(&mut self, raw: &str, pos: Pos, path: &str, convention: Option<TopicConvention>) -> Option<TopicName> {
        let first = convention.unwrap_or(TopicConvention::TenantDomain);
        let err = match TopicName::parse(raw, first) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let other = match first {
            TopicConvention::TenantDomain => TopicConvention::OnexKind,
            TopicConvention::OnexKind => TopicConvention::TenantDomain,
        };
        let fits_other = TopicName::parse(raw, other);
        if convention.is_none() {
            if let Ok(t) = fits_other {
                return Some(t);
            }
        }
        let mut hint = err.hint(first);
        if fits_other.is_ok() {
            hint = format!(
                "{hint}; this topic follows the `{}` convention: set `runtime.topic_convention: {}` to use it",
                other.as_str(),
                other.as_str()
            );
        }
        self.error(
            pos,
            path,
            err.to_string(),
            Some(hint),
            Some(format!("rename the topic to the form `{}`", first.pattern())),
        );
        None
    }

    /// A required key; reports its absence at the map.
    pub fn required<'n>(&mut self, fields: &Fields<'n>, key: &str, path: &str) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            let within = if path.is_empty() { "at the top level".to_owned() } else { format!("under `{path}`") };
            self.error(
                fields.node.pos,
                &join(path, key),
                format!("missing required field `{key}`"),
                None,
                Some(format!("add `{key}: ...` {within}")),
            );
        }
        found
    }

    /// Reports every key of `fields` that is not in `allowed`, with a "did you mean".
    pub fn deny_unknown(&mut self, fields: &Fields<'_>, path: &str, allowed: &[&str]) {
        for (key, _) in fields.entries {
            if allowed.contains(&key.name.as_str()) {
                continue;
            }
            self.unknown_key(key, path, allowed);
        }
    }

    /// Reports `key` as unknown at `path`.
    pub fn unknown_key(&mut self, key: &Key, path: &str, allowed: &[&str]) {
        let guess = did_you_mean(&key.name, allowed);
        let within = if path.is_empty() { "at the top level".to_owned() } else { format!("in `{path}`") };
        let hint = match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None => format!("allowed keys {within}: {}", allowed.join(", ")),
        };
        let fix = match guess {
            Some(g) => format!("rename `{}` to `{g}`", key.name),
            None => format!("remove `{}`", key.name),
        };
        self.error(
            key.pos,
            &join(path, &key.name),
            format!("unknown field `{}` {within}", key.name),
            Some(hint),
            Some(fix),
        );
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::contract::yaml::parse;

    fn root(src: &str) -> Node {
        parse(src, Path::new("c.yaml")).0.unwrap_or_else(|| panic!("bad yaml"))
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("handlrs", "handlers"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn did_you_mean_finds_close_keys_only() {
        assert_eq!(did_you_mean("handlrs", &["name", "handlers", "nodes"]), Some("handlers"));
        assert_eq!(did_you_mean("zzzzzz", &["name", "handlers"]), None);
    }

    #[test]
    fn deny_unknown_reports_every_unknown_key_with_a_suggestion() {
        let node = root("nme: a\nhandlrs: []\nfoo: 1\n");
        let mut d = Decoder::new(Path::new("c.yaml"));
        let fields = d.map(&node, "runtime").unwrap_or_else(|| panic!("not a map"));
        d.deny_unknown(&fields, "runtime", &["name", "handlers"]);
        let diags = d.into_diagnostics();
        assert_eq!(diags.len(), 3);
        assert_eq!(diags[1].line, 2);
        assert_eq!(diags[1].path, "runtime.handlrs");
        assert_eq!(diags[1].hint.as_deref(), Some("did you mean `handlers`?"));
        assert!(diags[2].hint.as_deref().unwrap_or("").contains("allowed keys"));
    }

    #[test]
    fn quoted_number_gets_a_remove_the_quotes_fix() {
        let node = root("t: \"30\"\n");
        let mut d = Decoder::new(Path::new("c.yaml"));
        let got = node.get("t").and_then(|n| d.int(n, "t", 1..=i64::MAX));
        assert_eq!(got, None);
        let diags = d.into_diagnostics();
        assert_eq!(diags[0].fix.as_deref(), Some("remove the quotes: `30`"));
    }

    #[test]
    fn int_out_of_range_names_the_bounds() {
        let node = root("p: 0\n");
        let mut d = Decoder::new(Path::new("c.yaml"));
        assert_eq!(node.get("p").and_then(|n| d.int(n, "x.p", 1..=1024)), None);
        assert!(d.into_diagnostics()[0].message.contains("between 1 and 1024"));
    }

    #[test]
    fn one_of_is_case_insensitive_and_suggests() {
        let node = root("a: PROD\nb: prdo\n");
        let mut d = Decoder::new(Path::new("c.yaml"));
        let allowed = ["dev", "staging", "prod"];
        assert_eq!(node.get("a").and_then(|n| d.one_of(n, "a", &allowed)), Some("prod"));
        assert_eq!(node.get("b").and_then(|n| d.one_of(n, "b", &allowed)), None);
        assert_eq!(d.into_diagnostics()[0].hint.as_deref(), Some("did you mean `prod`?"));
    }
}
