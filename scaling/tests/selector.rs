//! Label selectors against `k8s.io/apimachinery/pkg/labels` semantics: the
//! parser (`labels.Parse`), the canonical string (`Selector.String()`),
//! matching, and `metav1.LabelSelectorAsSelector`. These were the tests of the
//! metrics client's own parser, now that it uses this one.

#![allow(clippy::unwrap_used)]

use scaling::{LabelSelector, LabelSelectorRequirement, Labels, Selector};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn canonical(text: &str) -> String {
    Selector::parse(text).expect("valid selector").to_string()
}

fn expr(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn as_string(s: &LabelSelector) -> Result<String, String> {
    s.as_selector()
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
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
    // The lexer reads `in`/`notin` as keywords, but the parser reads a key in
    // the values context, where they are identifiers: they are valid keys.
    assert_eq!(canonical("in=b,notin"), "in=b,notin");
    // The parser's values are a set.
    assert_eq!(canonical("a in (x,y,x)"), "a in (x,y)");
}

#[test]
fn empty_values_in_sets_are_the_empty_label_value() {
    // `parseValues`: "()" is the set {""}; empty items between commas are "".
    assert_eq!(canonical("a in ()"), "a in ()");
    assert_eq!(canonical("a notin ()"), "a notin ()");
    assert_eq!(canonical("a in (,x)"), "a in (,x)");
    assert_eq!(canonical("a in (x,,y)"), "a in (,x,y)");
    assert_eq!(canonical("a in (x,)"), "a in (,x)");
    let empty = labels(&[("a", "")]);
    assert!(Selector::parse("a in ()").unwrap().matches(&empty));
    assert!(!Selector::parse("a in ()").unwrap().matches(&labels(&[])));
    assert!(!Selector::parse("a notin ()").unwrap().matches(&empty));
}

#[test]
fn parse_rejects_what_labels_parse_rejects() {
    for bad in [
        "a=b,", "a b", "x>abc", "(a)", "-bad=1", "a=-bad", "a in (b", "a in b",
    ] {
        assert!(Selector::parse(bad).is_err(), "{bad:?} must not parse");
    }
}

#[test]
fn only_ascii_space_tab_cr_lf_separate_tokens() {
    assert_eq!(canonical("\ta = b ,\r\nc"), "a=b,c");
    // Form feed, vertical tab and non-breaking space are identifier bytes
    // upstream, so they end up in a value or key and fail validation.
    for bad in ["a=b\u{c}", "a=\u{b}b", "a=b\u{a0}", "\u{a0}a"] {
        assert!(Selector::parse(bad).is_err(), "{bad:?} must not parse");
    }
    // A NUL byte ends the input, as upstream's lexer reads it.
    assert_eq!(canonical("a=b\0,garbage"), "a=b");
}

#[test]
fn gt_lt_values_must_be_integers_and_valid_label_values() {
    assert_eq!(canonical("n>5"), "n>5");
    assert_eq!(canonical("n<10"), "n<10");
    assert!(Selector::parse("n<").is_err(), "no integer");
    // `NewRequirement` checks every value as a label value for every
    // operator, so a signed integer is rejected even where it parses.
    let err = Selector::parse("n>-5").unwrap_err().to_string();
    assert!(
        err.starts_with("unable to parse requirement: values[0][n]: Invalid value: \"-5\": "),
        "{err}"
    );
    let err = Selector::parse("n<+5").unwrap_err().to_string();
    assert!(err.contains("values[0][n]: Invalid value: \"+5\""), "{err}");
}

#[test]
fn key_and_value_errors_carry_upstream_paths() {
    // The parser validates the key with an empty path.
    let err = Selector::parse("-bad=1").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "unable to parse requirement: : Invalid value: \"-bad\": name part must consist of"
        ),
        "{err}"
    );
    // Values are checked by `NewRequirement` under `values[i][key]`.
    let err = Selector::parse("app=-bad").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": a valid label must be an empty string"
        ),
        "{err}"
    );
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
        match_labels: [("z".to_string(), "1".to_string()), ("a".into(), "2".into())].into(),
        match_expressions: vec![
            expr("m", "NotIn", &["y", "x"]),
            expr("b", "DoesNotExist", &[]),
            expr("c", "Exists", &[]),
        ],
    };
    assert_eq!(as_string(&sel).unwrap(), "a=2,!b,c,m notin (x,y),z=1");
    assert_eq!(as_string(&LabelSelector::default()).unwrap(), "");
    let s = sel.as_selector().unwrap();
    assert!(s.matches(&labels(&[("a", "2"), ("c", ""), ("z", "1")])));
    assert!(!s.matches(&labels(&[("a", "2"), ("c", ""), ("z", "1"), ("m", "x")])));
    assert!(!s.matches(&labels(&[("a", "2"), ("b", ""), ("c", ""), ("z", "1")])));
}

#[test]
fn label_selector_values_are_not_a_set() {
    // `LabelSelectorAsSelector` hands `NewRequirement` a copy of the values, and
    // `Requirement.String()` sorts but does not de-duplicate them.
    let sel = LabelSelector {
        match_expressions: vec![expr("k", "In", &["b", "a", "b"])],
        ..Default::default()
    };
    assert_eq!(as_string(&sel).unwrap(), "k in (a,b,b)");
}

#[test]
fn label_selector_errors_have_upstream_texts() {
    let unknown = LabelSelector {
        match_expressions: vec![expr("a", "Gt", &["1"])],
        ..Default::default()
    };
    assert_eq!(
        as_string(&unknown).unwrap_err(),
        "\"Gt\" is not a valid label selector operator"
    );
    // An empty `values` reaches `NewRequirement` as a nil slice (JSON `null`).
    let empty_in = LabelSelector {
        match_expressions: vec![expr("k", "In", &[])],
        ..Default::default()
    };
    assert_eq!(
        as_string(&empty_in).unwrap_err(),
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );
    let exists_with_values = LabelSelector {
        match_expressions: vec![expr("k", "Exists", &["a<b"])],
        ..Default::default()
    };
    let err = as_string(&exists_with_values).unwrap_err();
    assert!(
        err.starts_with(
            "[values: Invalid value: [\"a\\u003cb\"]: values set must be empty for exists and does not exist, values[0][k]: Invalid value: \"a<b\": "
        ),
        "{err}"
    );
    let bad_label = LabelSelector {
        match_labels: [("app".to_string(), "x y".to_string())].into(),
        ..Default::default()
    };
    assert!(
        as_string(&bad_label)
            .unwrap_err()
            .starts_with("values[0][app]: Invalid value: \"x y\": ")
    );
    assert!(LabelSelector::validate(Some(&unknown)).is_err());
    assert!(LabelSelector::validate(None).is_ok());
}

#[test]
fn required_pairs_are_the_single_value_equalities_and_every_match_has_them() {
    let s = Selector::parse("app=web, tier in (api), zone in (a,b), env!=prod, track").unwrap();
    let pairs: Vec<(&str, &str)> = s.required_pairs().collect();
    assert_eq!(pairs, [("app", "web"), ("tier", "api")]);
    let candidates = [
        labels(&[
            ("app", "web"),
            ("tier", "api"),
            ("zone", "a"),
            ("track", "x"),
        ]),
        labels(&[
            ("app", "web"),
            ("tier", "db"),
            ("zone", "a"),
            ("track", "x"),
        ]),
        labels(&[
            ("app", "api"),
            ("tier", "api"),
            ("zone", "b"),
            ("track", "x"),
        ]),
        labels(&[
            ("app", "web"),
            ("tier", "api"),
            ("zone", "b"),
            ("track", ""),
        ]),
    ];
    for l in &candidates {
        if s.matches(l) {
            for (k, v) in s.required_pairs() {
                assert_eq!(
                    l.get(k).map(String::as_str),
                    Some(v),
                    "{l:?} matched without {k}={v}"
                );
            }
        }
    }
    assert_eq!(candidates.iter().filter(|l| s.matches(l)).count(), 2);
    assert_eq!(
        Selector::parse("track, env notin (prod)")
            .unwrap()
            .required_pairs()
            .count(),
        0
    );
}
