//! Kubernetes resource quantities, as far as traces and the e2e harness need them: CPU in
//! millicores and memory in bytes, parsed from what the API and
//! metrics-server print (`250m`, `249713n`, `1`, `128Mi`, `1e3`) and
//! formatted for kwok's usage annotations.

use crate::error::{Error, Result};

/// Splits a quantity into its number and suffix, applying a decimal exponent
/// (`1e3`, `5E-1`) when the suffix is one.
fn split(q: &str) -> Result<(f64, &str)> {
    let q = q.trim();
    let end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(end);
    let value: f64 = number.parse().map_err(|_| Error::Quantity(q.to_owned()))?;
    // `E` alone is the exa suffix; `e`/`E` followed by a number is an exponent.
    if let Some(exp) = suffix.strip_prefix(['e', 'E'])
        && !exp.is_empty()
        && let Ok(exp) = exp.parse::<i32>()
    {
        return Ok((value * 10f64.powi(exp), ""));
    }
    Ok((value, suffix))
}

fn multiplier(suffix: &str) -> Option<f64> {
    Some(match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    })
}

/// The base-unit value of a quantity (cores for CPU, bytes for memory).
pub fn value(q: &str) -> Result<f64> {
    let (number, suffix) = split(q)?;
    let m = multiplier(suffix).ok_or_else(|| Error::Quantity(q.to_owned()))?;
    let v = number * m;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Quantity(q.to_owned()))
    }
}

/// A CPU quantity in millicores.
pub fn cpu_millis(q: &str) -> Result<f64> {
    value(q).map(|cores| cores * 1000.0)
}

/// A memory quantity in bytes.
pub fn bytes(q: &str) -> Result<f64> {
    value(q)
}

/// Millicores as a quantity kwok accepts, rounded to whole millicores
/// (the API's own precision for CPU).
pub fn format_cpu(millis: f64) -> String {
    format!("{}m", millis.max(0.0).round() as u64)
}

/// Bytes as a quantity, rounded to whole bytes.
pub fn format_bytes(bytes: f64) -> String {
    format!("{}", bytes.max(0.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn cpu_quantities_in_every_form_metrics_server_prints_become_millicores() {
        for (q, want) in [
            ("250m", 250.0),
            ("1", 1000.0),
            ("1.5", 1500.0),
            ("249713n", 0.249713),
            ("1500u", 1.5),
            ("2k", 2_000_000.0),
            ("1e3", 1_000_000.0),
            ("5E-1", 500.0),
        ] {
            let got = cpu_millis(q).unwrap_or(f64::NAN);
            assert!(close(got, want), "{q}: got {got}, want {want}");
        }
    }

    #[test]
    fn memory_quantities_use_binary_and_decimal_suffixes() {
        for (q, want) in [
            ("128Mi", 134_217_728.0),
            ("1Gi", 1_073_741_824.0),
            ("4096Ki", 4_194_304.0),
            ("1M", 1_000_000.0),
            ("1000", 1000.0),
            ("1E", 1e18),
        ] {
            let got = bytes(q).unwrap_or(f64::NAN);
            assert!(close(got, want), "{q}: got {got}, want {want}");
        }
    }

    #[test]
    fn garbage_is_rejected_rather_than_read_as_zero() {
        for q in ["", "m", "12x", "1.2.3Mi", "abc"] {
            assert!(value(q).is_err(), "{q:?} should not parse");
        }
    }

    #[test]
    fn formatting_rounds_to_whole_units_and_clamps_negatives() {
        assert_eq!(format_cpu(133.33), "133m");
        assert_eq!(format_cpu(-4.0), "0m");
        assert_eq!(format_bytes(1.6), "2");
    }
}
