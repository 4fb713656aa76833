//! Kubernetes label selectors as kube-controller-manager sees them: parsing
//! (`labels.Parse`), the canonical string sent to the metrics APIs
//! (`Selector.String()`), matching against pod labels, and the conversion of a
//! structured `metav1.LabelSelector` (`LabelSelectorAsSelector`).
//!
//! The scaling crate owns selector validation for the decision core; this copy
//! exists because the batching source must filter one namespace-wide response
//! by each autoscaler's selector on the client side, and because the request
//! shapes need the canonical string of a `metric.selector`. Keeping it here
//! avoids a dependency from an I/O crate on the decision crate for one parser.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The operator of one selector requirement, as in `k8s.io/apimachinery/pkg/selection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value` (kept distinct because `String()` prints it back as `==`)
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>N` (integer)
    GreaterThan,
    /// `key<N` (integer)
    LessThan,
}

/// One requirement of a selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated, like the `sets.String` Go keeps them in.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement with the checks of Go's `labels.NewRequirement`.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        validate_key(key)?;
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(SelectorError::new(
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                return Err(SelectorError::new(
                    "exact-match compatibility requires one single value",
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError::new(
                    "values set must be empty for exists and does not exist",
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(SelectorError::new(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(SelectorError::new(
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
            _ => {}
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for v in &values {
                validate_value(v)?;
            }
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Self {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// Whether a set of labels satisfies this requirement (Go's `Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotIn | Operator::NotEquals => {
                value.is_none_or(|v| !self.values.iter().any(|x| x == v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                // A label that is not an integer never matches, as upstream.
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let joined = self.values.join(",");
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "({joined})")
        } else {
            f.write_str(&joined)
        }
    }
}

/// A parsed label selector: requirements ANDed together, sorted by key.
///
/// `Display` is the canonical string kube-controller-manager sends as
/// `labelSelector` (Go's `internalSelector.String()`); the empty selector
/// (match everything) displays as `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every set of labels.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Builds a selector from requirements, sorted by key like Go's `Selector.Add`.
    ///
    /// Go sorts with the unstable `sort.Sort`; requirements sharing a key are
    /// kept in input order here, which is one of the orders Go may produce.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements }
    }

    /// Parses the Kubernetes label-selector syntax, like Go's `labels.Parse`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Parser::new(text)?.parse()
    }

    /// Converts a structured selector the way Go's
    /// `metav1.LabelSelectorAsSelector` does. `None` (Go's `labels.Nothing()`)
    /// and an empty selector both return the empty selector: their strings are
    /// both `""`, which is all the metrics requests use.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        let Some(selector) = selector else {
            return Ok(Self::everything());
        };
        let mut requirements = Vec::new();
        for (k, v) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            };
            requirements.push(Requirement::new(
                &expr.key,
                op,
                expr.values.clone().unwrap_or_default(),
            )?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector with no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for Selector {
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

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The canonical selector string of a `metav1.LabelSelector` (see [`Selector::from_label_selector`]).
pub fn label_selector_string(selector: Option<&LabelSelector>) -> Result<String, SelectorError> {
    Ok(Selector::from_label_selector(selector)?.to_string())
}

/// A selector that could not be parsed or converted. The text follows Go's where it is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl SelectorError {
    fn new(text: &str) -> Self {
        Self(text.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Comma,
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Open,
    Close,
    In,
    NotIn,
    Greater,
    Less,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Comma => ",".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::Bang => "!".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::Greater => ">".into(),
            Token::Less => "<".into(),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

impl Parser {
    fn new(text: &str) -> Result<Self, SelectorError> {
        let mut tokens = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            if is_special(c) {
                let next = chars.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('=', Some('=')) => (Token::DoubleEquals, 2),
                    ('!', Some('=')) => (Token::NotEquals, 2),
                    ('=', _) => (Token::Equals, 1),
                    ('!', _) => (Token::Bang, 1),
                    ('(', _) => (Token::Open, 1),
                    (')', _) => (Token::Close, 1),
                    (',', _) => (Token::Comma, 1),
                    ('>', _) => (Token::Greater, 1),
                    _ => (Token::Less, 1),
                };
                tokens.push(tok);
                i += len;
                continue;
            }
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Ident(word),
            });
        }
        Ok(Self { tokens, pos: 0 })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn parse(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek().is_none() {
            return Ok(Selector::everything());
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                None => break,
                Some(Token::Comma) => {
                    if self.peek().is_none() {
                        return Err(SelectorError::new("found '', expected: identifier"));
                    }
                }
                Some(t) => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.describe()
                    )));
                }
            }
        }
        Ok(Selector::from_requirements(requirements))
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = self.peek() == Some(&Token::Bang);
        if negated {
            self.pos += 1;
        }
        let key = match self.next() {
            Some(Token::Ident(k)) => k,
            Some(t) => {
                return Err(SelectorError(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    t.describe()
                )));
            }
            None => return Err(SelectorError::new("found '', expected: identifier")),
        };
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, vec![]);
        }
        let operator = match self.peek() {
            None | Some(Token::Comma) => return Requirement::new(&key, Operator::Exists, vec![]),
            Some(Token::Equals) => Operator::Equals,
            Some(Token::DoubleEquals) => Operator::DoubleEquals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::In) => Operator::In,
            Some(Token::NotIn) => Operator::NotIn,
            Some(Token::Greater) => Operator::GreaterThan,
            Some(Token::Less) => Operator::LessThan,
            Some(t) => {
                return Err(SelectorError(format!(
                    "found '{}', expected: =, !=, ==, in, notin, >, <",
                    t.describe()
                )));
            }
        };
        self.pos += 1;
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.value_list()?
        } else {
            // `key=` is a valid requirement on the empty value.
            match self.peek().cloned() {
                None | Some(Token::Comma) => vec![String::new()],
                Some(t @ (Token::Ident(_) | Token::In | Token::NotIn)) => {
                    self.pos += 1;
                    vec![value_text(t)]
                }
                Some(t) => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: identifier",
                        t.describe()
                    )));
                }
            }
        };
        Requirement::new(&key, operator, values)
    }

    fn value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Some(Token::Open) => {}
            Some(t) => {
                return Err(SelectorError(format!(
                    "found '{}', expected: '('",
                    t.describe()
                )));
            }
            None => return Err(SelectorError::new("found '', expected: '('")),
        }
        let mut values = Vec::new();
        if self.peek() == Some(&Token::Close) {
            self.pos += 1;
            return Ok(values);
        }
        let mut expect_value = true;
        loop {
            match self.next() {
                Some(t @ (Token::Ident(_) | Token::In | Token::NotIn)) if expect_value => {
                    values.push(value_text(t));
                    expect_value = false;
                }
                Some(Token::Comma) => {
                    if expect_value {
                        // `(a,,b)` and `(,a)` carry the empty value, as in Go.
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Some(Token::Close) => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(t) => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.describe()
                    )));
                }
                None => return Err(SelectorError::new("found '', expected: ')'")),
            }
        }
    }
}

/// In value position Go's parser reads the keywords `in` and `notin` as plain values.
fn value_text(t: Token) -> String {
    match t {
        Token::Ident(v) => v,
        other => other.describe(),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A qualified name part: at most 63 characters, alphanumeric at both ends.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(is_name_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_dns_subdomain(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 253
        && prefix.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && label.starts_with(|c: char| c.is_ascii_alphanumeric())
                && label.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => valid_dns_subdomain(prefix) && valid_name(name),
        None => valid_name(key),
    };
    if ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "key: Invalid value: {key:?}: must be a qualified name"
        )))
    }
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || valid_name(value) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "values[0][{value}]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn canonical(text: &str) -> String {
        Selector::parse(text).expect("valid selector").to_string()
    }

    #[test]
    fn canonical_string_sorts_requirements_by_key_and_in_values() {
        assert_eq!(canonical("app=nginx-deploy"), "app=nginx-deploy");
        assert_eq!(
            canonical("tier in (web, api), app = x"),
            "app=x,tier in (api,web)"
        );
        assert_eq!(canonical("b notin (z,a),!c,a"), "a,b notin (a,z),!c");
        assert_eq!(canonical("a==1,b!=2,c>3,d<4"), "a==1,b!=2,c>3,d<4");
        assert_eq!(canonical(""), "");
        assert_eq!(canonical("  "), "");
        assert_eq!(canonical("a="), "a=");
        // Keywords are plain values where a value is expected.
        assert_eq!(canonical("a=in,b in (notin,x)"), "a=in,b in (notin,x)");
    }

    #[test]
    fn parse_rejects_what_labels_parse_rejects() {
        for bad in [
            "a in ()", "a=b,", "a b", "x>abc", "in=b", "(a)", "-bad=1", "a=-bad",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} must not parse");
        }
    }

    #[test]
    fn matching_follows_go_semantics_for_every_operator() {
        let pod = labels(&[("app", "web"), ("tier", "front"), ("gen", "7")]);
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=api", true),
            ("missing!=x", true),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("missing notin (front)", true),
            ("missing in (front)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("gen>6", true),
            ("gen<7", false),
            ("app>1", false),
            ("app=web,tier=back", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let s = Selector::parse(sel).expect(sel);
            assert_eq!(s.matches(&pod), want, "selector {sel:?}");
        }
    }

    #[test]
    fn label_selector_converts_like_label_selector_as_selector() {
        let sel = LabelSelector {
            match_labels: Some(
                [("z".to_string(), "1".to_string()), ("a".into(), "2".into())].into(),
            ),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "m".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["y".into(), "x".into()]),
                },
                LabelSelectorRequirement {
                    key: "b".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "c".into(),
                    operator: "Exists".into(),
                    values: Some(vec![]),
                },
            ]),
        };
        assert_eq!(
            label_selector_string(Some(&sel)).expect("valid"),
            "a=2,!b,c,m notin (x,y),z=1"
        );
        assert_eq!(label_selector_string(None).expect("nil"), "");
        assert_eq!(
            label_selector_string(Some(&LabelSelector::default())).expect("empty"),
            ""
        );
    }

    #[test]
    fn label_selector_with_unknown_operator_is_an_error_with_go_text() {
        let sel = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Gt".into(),
                values: Some(vec!["1".into()]),
            }]),
            ..Default::default()
        };
        let err = label_selector_string(Some(&sel)).expect_err("Gt is not a LabelSelector op");
        assert_eq!(
            err.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
    }
}
