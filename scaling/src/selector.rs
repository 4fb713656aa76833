//! Label selectors: the string syntax of `labels.Parse` (the scale's
//! `status.selector`) and the structured `metav1.LabelSelector` of metric
//! identifiers, with upstream validation and error texts.

use crate::error::{Error, Result};
use crate::quantity::parse_go_int64;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Pod labels.
pub type Labels = BTreeMap<String, String>;

/// A selector operator (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5`
    GreaterThan,
    /// `key<5`
    LessThan,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated, as upstream's `sets.String.List()`.
    values: Vec<String>,
}

/// A parsed label selector: requirements ANDed, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a selector string as `labels.Parse` does. An empty string selects everything.
    pub fn parse(input: &str) -> Result<Selector> {
        let tokens = lex(input);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = parser.parse().map_err(Error::Selector)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirement (selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl Requirement {
    /// Builds and validates a requirement (`labels.NewRequirement`): every
    /// error is reported, in upstream's order and with its field paths, against
    /// the values as given. Duplicates are kept, as upstream keeps them (its
    /// `String()` prints them); only the parser's values are a set.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement> {
        let mut errors: Vec<String> = Vec::new();
        if let Some(e) = validate_label_key(key, "key") {
            errors.push(e);
        }
        let count_error = match operator {
            Operator::In | Operator::NotIn => values
                .is_empty()
                .then_some("for 'in', 'notin' operators, values set can't be empty"),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                (values.len() != 1).then_some("exact-match compatibility requires one single value")
            }
            Operator::Exists | Operator::DoesNotExist => (!values.is_empty())
                .then_some("values set must be empty for exists and does not exist"),
            Operator::GreaterThan | Operator::LessThan => (values.len() != 1)
                .then_some("for 'Gt', 'Lt' operators, exactly one value is required"),
        };
        if let Some(detail) = count_error {
            errors.push(invalid_list("values", &values, detail));
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, v) in values.iter().enumerate() {
                if parse_go_int64(v).is_none() {
                    errors.push(invalid_value(
                        &format!("values[{i}]"),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errors.push(invalid_value(
                    &format!("values[{i}][{key}]"),
                    v,
                    &msgs.join("; "),
                ));
            }
        }
        match errors.len() {
            0 => {
                // Sorted for matching and printing (`String()` sorts its output).
                let mut values = values;
                values.sort();
                Ok(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                })
            }
            1 => Err(Error::Selector(errors.remove(0))),
            _ => Err(Error::Selector(format!("[{}]", errors.join(", ")))),
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
    }

    /// `Requirement.Matches`.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(label) = value.and_then(|v| parse_go_int64(v)) else {
                    return false;
                };
                let [required] = self.values.as_slice() else {
                    return false;
                };
                let Some(required) = parse_go_int64(required) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    label > required
                } else {
                    label < required
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// `Requirement.String()`: the canonical form (`!k`, `k=v`, `k in (a,b)`, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        f.write_str(&self.values.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Selector {
    /// `labels.Selector.String()`: requirements sorted by key, joined by `,`.
    /// This is the `labelSelector` the controller sends to the metrics APIs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Lexer and parser (labels.Parse)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Identifier,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
    End,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn lex(input: &str) -> Vec<(Tok, String)> {
    // Upstream reads bytes and treats a NUL byte as the end of the input.
    let b = input.as_bytes();
    let b = match b.iter().position(|c| *c == 0) {
        Some(n) => &b[..n],
        None => b,
    };
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        while pos < b.len() && is_whitespace(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(b[pos]) {
            // Longest run of special symbols that still forms a token.
            let start = pos;
            let mut last: Option<(Tok, usize)> = None;
            while pos < b.len() && is_special(b[pos]) {
                let candidate = String::from_utf8_lossy(&b[start..=pos]).into_owned();
                if let Some(t) = keyword(&candidate) {
                    last = Some((t, pos + 1));
                    pos += 1;
                } else if last.is_some() {
                    break;
                } else {
                    pos += 1;
                }
            }
            match last {
                Some((t, end)) => {
                    pos = end;
                    out.push((t, String::from_utf8_lossy(&b[start..end]).into_owned()));
                }
                None => {
                    // Unreachable with the current token table: every single
                    // special symbol is a token.
                    out.push((Tok::End, String::new()));
                    return out;
                }
            }
        } else {
            let start = pos;
            while pos < b.len() && !is_special(b[pos]) && !is_whitespace(b[pos]) {
                pos += 1;
            }
            let word = String::from_utf8_lossy(&b[start..pos]).into_owned();
            let tok = match keyword(&word) {
                Some(t) => t,
                None => Tok::Identifier,
            };
            out.push((tok, word));
        }
    }
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

/// Upstream's parser contexts: in `Values`, `in`/`notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn peek(&self, ctx: Ctx) -> (Tok, String) {
        let (t, lit) = self
            .tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        (Self::in_context(t, ctx), lit)
    }

    fn next(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.peek(ctx);
        self.pos += 1;
        r
    }

    fn in_context(t: Tok, ctx: Ctx) -> Tok {
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            Tok::Identifier
        } else {
            t
        }
    }

    fn parse(&mut self) -> std::result::Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, lit) = self.peek(Ctx::Values);
            match t {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, lit) = self.next(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, lit2) = self.peek(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{lit2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!("found '{lit}', expected: ',' or 'end of string'"));
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> std::result::Result<Requirement, String> {
        let mut op: Option<Operator> = None;
        let (mut t, mut lit) = self.next(Ctx::Values);
        if t == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (t, lit) = self.next(Ctx::Values);
        }
        if t != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let key = lit;
        if let Some(e) = validate_label_key(&key, "") {
            return Err(e);
        }
        let (after, _) = self.peek(Ctx::Values);
        if (after == Tok::End || after == Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = op {
            return Requirement::new(&key, op, Vec::new()).map_err(|e| e.to_string());
        }
        let (t, lit) = self.next(Ctx::KeyAndOperator);
        let op = match t {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        };
        let mut values = match op {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        // Upstream collects values in a set and passes its sorted list.
        values.sort();
        values.dedup();
        Requirement::new(&key, op, values).map_err(|e| e.to_string())
    }

    fn values(&mut self) -> std::result::Result<Vec<String>, String> {
        let (t, lit) = self.next(Ctx::Values);
        if t != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.peek(Ctx::Values);
        match t {
            Tok::Identifier | Tok::Comma => {
                let s = self.identifiers()?;
                let (t, _) = self.next(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.next(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> std::result::Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (t, lit) = self.next(Ctx::Values);
            match t {
                Tok::Identifier => {
                    s.push(lit);
                    let (t2, lit2) = self.peek(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.peek(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.next(Ctx::Values);
                        s.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> std::result::Result<Vec<String>, String> {
        let (t, _) = self.peek(Ctx::Values);
        if t == Tok::End || t == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (t, lit) = self.next(Ctx::Values);
        if t == Tok::Identifier {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

// ---------------------------------------------------------------------------
// Validation (k8s.io/apimachinery/pkg/util/validation)

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        let _ = write!(out, "'{e}', ");
    }
    let _ = write!(out, "regex used for validation is '{fmt}')");
    out
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => ok(f) && ok(l) && b.iter().all(|c| ok(c) || *c == b'-'),
        _ => false,
    }
}

fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsQualifiedName`.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn validate_label_key(key: &str, path: &str) -> Option<String> {
    let errs = qualified_name_errors(key);
    if errs.is_empty() {
        None
    } else {
        Some(invalid_value(path, key, &errs.join("; ")))
    }
}

/// `field.Invalid(path, value, detail).Error()`.
fn invalid_value(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {value:?}: {detail}")
}

/// `field.Invalid(path, values, detail).Error()` for a `[]string`: upstream
/// renders the list with `encoding/json` (HTML-safe escaping). An empty list
/// is `null`: the only caller that can pass one, `LabelSelectorAsSelector`,
/// hands over a nil slice.
fn invalid_list(path: &str, values: &[String], detail: &str) -> String {
    let rendered = if values.is_empty() {
        "null".to_string()
    } else {
        let mut out = String::new();
        for c in serde_json::to_string(values)
            .unwrap_or_else(|_| "null".to_string())
            .chars()
        {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
        out
    };
    format!("{path}: Invalid value: {rendered}: {detail}")
}

// ---------------------------------------------------------------------------
// metav1.LabelSelector

/// One `matchExpressions` entry of a `metav1.LabelSelector`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist` (anything else fails conversion).
    pub operator: String,
    /// The values.
    pub values: Vec<String>,
}

/// A structured label selector (`metav1.LabelSelector`), as metric identifiers carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    /// `metav1.LabelSelectorAsSelector` of a present selector: `matchLabels`
    /// become `=` requirements, `matchExpressions` `in`, `notin`, exists and
    /// does-not-exist ones, with `NewRequirement`'s checks; any other operator
    /// fails with upstream's text. An empty selector selects everything. (A
    /// nil selector is upstream's `labels.Nothing()`, which matches nothing and
    /// prints as `""`: callers holding an `Option` handle that case.)
    pub fn as_selector(&self) -> Result<Selector> {
        let mut requirements =
            Vec::with_capacity(self.match_labels.len() + self.match_expressions.len());
        for (k, v) in &self.match_labels {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for e in &self.match_expressions {
            let op = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(Error::Selector(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            };
            requirements.push(Requirement::new(&e.key, op, e.values.clone())?);
        }
        // `Selector.Add` sorts by key (stable here: one of the orders Go's
        // unstable sort may give requirements sharing a key).
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    /// `metav1.LabelSelectorAsSelector`: validates the selector. A `None`
    /// selector selects nothing and an empty one everything; both are valid.
    pub fn validate(selector: Option<&LabelSelector>) -> Result<()> {
        selector.map_or(Ok(()), |s| s.as_selector().map(drop))
    }

    /// Go's `%+v` of a `*metav1.LabelSelector` (its generated `String()`),
    /// which upstream embeds in External metric names; `None` is `nil`.
    pub fn go_string(selector: Option<&LabelSelector>) -> String {
        let Some(s) = selector else {
            return "nil".to_string();
        };
        let mut out = String::from("&LabelSelector{MatchLabels:map[string]string{");
        for (k, v) in &s.match_labels {
            let _ = write!(out, "{k}: {v},");
        }
        out.push_str("},MatchExpressions:[]LabelSelectorRequirement{");
        for e in &s.match_expressions {
            let _ = write!(
                out,
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.key,
                e.operator,
                e.values.join(" ")
            );
        }
        out.push_str("},}");
        out
    }

    /// Equality as calc matches metric answers: `None` equals empty, labels as
    /// maps, expressions (and their values) as sets.
    pub fn equivalent(a: Option<&LabelSelector>, b: Option<&LabelSelector>) -> bool {
        let empty = LabelSelector::default();
        let a = a.unwrap_or(&empty);
        let b = b.unwrap_or(&empty);
        if a.match_labels != b.match_labels {
            return false;
        }
        let norm = |s: &LabelSelector| {
            let mut v: Vec<(String, String, Vec<String>)> = s
                .match_expressions
                .iter()
                .map(|e| {
                    let mut vals = e.values.clone();
                    vals.sort();
                    vals.dedup();
                    (e.key.clone(), e.operator.clone(), vals)
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        norm(a) == norm(b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_operators_match_like_upstream() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let table: &[(&str, bool)] = &[
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=api", false),
            ("app!=api", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (web,api)", true),
            ("app in (api)", false),
            ("app notin (api)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("n<5", false),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,tier=front", true),
            ("app=web, tier=back", false),
            ("  app = web  ", true),
            ("app=", false),
            ("in=web", false),
            ("app in (web, in)", true),
        ];
        for (sel, want) in table {
            let s = Selector::parse(sel).unwrap();
            assert_eq!(s.matches(&l), *want, "{sel:?}");
        }
        let empty_value = labels(&[("app", "")]);
        assert!(Selector::parse("app=").unwrap().matches(&empty_value));
        assert!(Selector::parse("app in ()").unwrap().matches(&empty_value));
    }

    #[test]
    fn parsed_selectors_print_in_canonical_sorted_form() {
        let table: &[(&str, &str)] = &[
            ("tier=front, app=web", "app=web,tier=front"),
            ("app in (b, a)", "app in (a,b)"),
            ("!x,app", "app,!x"),
            ("n > 5", "n>5"),
            ("a==b,c!=d", "a==b,c!=d"),
            ("k notin (z)", "k notin (z)"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(
                Selector::parse(input).unwrap().to_string(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn malformed_selectors_fail_with_upstream_texts() {
        let table: &[(&str, &str)] = &[
            ("app=web,", "found '', expected: identifier after ','"),
            (
                ",app",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            (
                "app web",
                "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "app=web web2",
                "found 'web2', expected: ',' or 'end of string'",
            ),
            (
                "app in web",
                "unable to parse requirement: found 'web' expected: '('",
            ),
            (
                "app in (web",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "app=(web)",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "=web",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "app>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            ("!app=web", "found '=', expected: ',' or 'end of string'"),
        ];
        for (sel, want) in table {
            let err = Selector::parse(sel).unwrap_err().to_string();
            assert_eq!(err, *want, "{sel:?}");
        }
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        for sel in [
            "-app=web",
            "app=web-",
            "a/b/c=d",
            "/app=x",
            "Example.com/app=x",
            "app=a b",
            "app in (ok, -bad)",
            "app=x y",
            "app>+5",
        ] {
            assert!(Selector::parse(sel).is_err(), "{sel:?} should fail");
        }
        let long = format!("app={}", "a".repeat(64));
        assert!(Selector::parse(&long).is_err());
        assert!(Selector::parse("example.com/app=x").is_ok());
        assert!(
            Selector::parse("app>-5").is_err(),
            "label value must start alphanumeric"
        );
    }

    #[test]
    fn label_selector_go_string_matches_gogo_output() {
        assert_eq!(LabelSelector::go_string(None), "nil");
        assert_eq!(
            LabelSelector::go_string(Some(&LabelSelector::default())),
            "&LabelSelector{MatchLabels:map[string]string{},MatchExpressions:[]LabelSelectorRequirement{},}"
        );
        let s = LabelSelector {
            match_labels: [
                ("label".to_string(), "value".to_string()),
                ("a".to_string(), "b".to_string()),
            ]
            .into_iter()
            .collect(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: vec!["x".into(), "y".into()],
            }],
        };
        assert_eq!(
            LabelSelector::go_string(Some(&s)),
            "&LabelSelector{MatchLabels:map[string]string{a: b,label: value,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }

    #[test]
    fn label_selector_conversion_validates_operators_and_values() {
        let bad_op = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Equals".into(),
                values: vec![],
            }],
            ..Default::default()
        };
        assert!(LabelSelector::validate(Some(&bad_op)).is_err());
        let empty_in = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "In".into(),
                values: vec![],
            }],
            ..Default::default()
        };
        assert!(LabelSelector::validate(Some(&empty_in)).is_err());
        assert!(LabelSelector::validate(None).is_ok());
        assert!(LabelSelector::validate(Some(&LabelSelector::default())).is_ok());
    }
}
