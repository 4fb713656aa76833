//! The structured `metav1.LabelSelector` of metric identifiers: conversion to
//! a [`Selector`], Go's printed form, and calc's equivalence.

use super::{Operator, Requirement, Selector};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
