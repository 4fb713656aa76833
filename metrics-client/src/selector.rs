//! Label selectors as kube-controller-manager sees them. Parsing
//! (`labels.Parse`), the canonical string sent to the metrics APIs
//! (`Selector.String()`) and matching are the scaling crate's
//! [`Selector`]; this module adds the conversion of a Kubernetes
//! `metav1.LabelSelector` (`LabelSelectorAsSelector`) and this crate's error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub use scaling::Selector;

/// The canonical selector string of a `metav1.LabelSelector`: Go's
/// `metav1.LabelSelectorAsSelector(selector).String()`. `None` is
/// `labels.Nothing()` and an empty selector `labels.Everything()`; both print
/// as `""`, which is all the metrics requests use.
pub fn label_selector_string(selector: Option<&LabelSelector>) -> Result<String, SelectorError> {
    let Some(selector) = selector else {
        return Ok(String::new());
    };
    let converted = scaling::LabelSelector {
        match_labels: selector.match_labels.clone().unwrap_or_default(),
        match_expressions: selector
            .match_expressions
            .iter()
            .flatten()
            .map(|e| scaling::LabelSelectorRequirement {
                key: e.key.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            })
            .collect(),
    };
    Ok(converted.as_selector()?.to_string())
}

/// A selector that could not be parsed or converted, with upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl From<scaling::Error> for SelectorError {
    fn from(e: scaling::Error) -> Self {
        Self(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn kubernetes_label_selectors_convert_like_label_selector_as_selector() {
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
    fn conversion_errors_keep_upstream_texts() {
        let op = |operator: &str, values: Option<Vec<String>>| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: operator.into(),
                values,
            }]),
            ..Default::default()
        };
        let err = label_selector_string(Some(&op("Gt", Some(vec!["1".into()]))))
            .expect_err("Gt is not a LabelSelector op");
        assert_eq!(
            err.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        // Missing and empty `values` are the same nil slice upstream.
        for values in [None, Some(vec![])] {
            let err = label_selector_string(Some(&op("In", values))).expect_err("empty In");
            assert_eq!(
                err.to_string(),
                "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
            );
        }
    }
}
