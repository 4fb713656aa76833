//! Label selectors: the string syntax of `labels.Parse` (the scale's
//! `status.selector`) and the structured `metav1.LabelSelector` of metric
//! identifiers, with upstream validation and error texts.

mod label_selector;
mod parse;
mod validate;

pub use label_selector::{LabelSelector, LabelSelectorRequirement};

use crate::error::{Error, Result};
use crate::quantity::parse_go_int64;
use parse::{Parser, lex};
use std::collections::BTreeMap;
use std::fmt;
use validate::{invalid_list, invalid_value, label_value_errors, validate_label_key};

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

    /// The `key=value` pairs every matching label set must contain: the requirements
    /// `key=value`, `key==value` and `key in (value)`. A cache indexed by label pairs can start
    /// from the smallest of their posting lists instead of every object (and must still
    /// [`matches`](Self::matches) each candidate against the whole selector).
    pub fn required_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.requirements
            .iter()
            .filter_map(|r| match (r.operator, r.values.as_slice()) {
                (Operator::In | Operator::Equals | Operator::DoubleEquals, [value]) => {
                    Some((r.key.as_str(), value.as_str()))
                }
                _ => None,
            })
    }

    /// Narrows a label-pair index to what [`required_pairs`](Self::required_pairs) allows:
    /// `postings(key, value)` is the index's entry for one pair with its length, and the
    /// answer is the shortest entry of the required pairs, or that nothing can match (a
    /// required pair has no entry), or that every object is a candidate (the selector requires
    /// no pair). Candidates must still be [`matched`](Self::matches).
    pub fn narrowest<'a, T>(
        &'a self,
        mut postings: impl FnMut(&'a str, &'a str) -> Option<(T, usize)>,
    ) -> Candidates<T> {
        let mut narrowest: Option<(T, usize)> = None;
        for (key, value) in self.required_pairs() {
            let Some((entry, len)) = postings(key, value) else {
                return Candidates::None;
            };
            if narrowest
                .as_ref()
                .is_none_or(|(_, shortest)| len < *shortest)
            {
                narrowest = Some((entry, len));
            }
        }
        match narrowest {
            Some((entry, _)) => Candidates::Only(entry),
            None => Candidates::All,
        }
    }
}

/// Which objects of a label-pair index a selector could match (see [`Selector::narrowest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates<T> {
    /// None: a required pair is carried by no object.
    None,
    /// Every object: the selector requires no pair.
    All,
    /// Those under the entry of the required pair carried by the fewest objects.
    Only(T),
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
    fn narrowest_is_the_shortest_entry_of_a_required_pair() {
        // An index of pair -> object count: app=web on 5 objects, tier=front on 2, zone=a on 9.
        let index = |key: &str, value: &str| match (key, value) {
            ("app", "web") => Some(("app=web", 5)),
            ("tier", "front") => Some(("tier=front", 2)),
            ("zone", "a") => Some(("zone=a", 9)),
            _ => None,
        };
        let narrowed = |selector: &str| Selector::parse(selector).unwrap().narrowest(index);
        assert_eq!(
            narrowed("app=web,tier in (front),zone==a"),
            Candidates::Only("tier=front")
        );
        assert_eq!(narrowed("zone=a,app=web"), Candidates::Only("app=web"));
        // Set-based requirements narrow nothing; they are matched on each candidate.
        assert_eq!(
            narrowed("app=web,tier in (front,back),!gone"),
            Candidates::Only("app=web")
        );
        assert_eq!(narrowed("tier in (front,back),app!=web"), Candidates::All);
        assert_eq!(narrowed(""), Candidates::All);
        // A required pair no object carries: nothing can match, whatever else is required.
        assert_eq!(narrowed("tier=front,app=api"), Candidates::None);
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
