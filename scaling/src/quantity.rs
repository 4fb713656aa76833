//! Kubernetes `resource.Quantity`: parsing, milli-values and canonical strings.
//!
//! The controller reads every metric value, target and request as
//! `Quantity.MilliValue()` and reads per-direction tolerances with
//! `Quantity.AsApproximateFloat64()`. Both depend on how the upstream parser
//! stores the number (an `int64` mantissa with a decimal scale when it fits, an
//! arbitrary-precision decimal rounded up to nano precision otherwise), so this
//! module reproduces that parser rather than parsing to a float.
//!
//! Deliberate differences from upstream, all on values no real object carries:
//! * `MilliValue()` of a quantity whose milli-value does not fit in an `i64`
//!   wraps (or returns 0) upstream; here it saturates at `i64::MIN`/`i64::MAX`.
//! * Negative values with sub-milli digits are rounded away from zero (the
//!   `int64` path of upstream); upstream's arbitrary-precision path rounds some
//!   of them differently.

use crate::error::{Error, Result};

/// The serialization format a quantity remembers from its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi`
    BinarySI,
    /// `12M`
    DecimalSI,
}

/// A parsed quantity, reduced to what the controller reads from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    milli: i64,
    approx: f64,
    format: Format,
}

const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const NUMERIC: &str = "unable to parse numeric part of quantity";
const SUFFIX: &str = "unable to parse quantity's suffix";

/// `maxInt64Factors` upstream: an `int64` holds 18 decimal digits safely.
const MAX_INT64_FACTORS: i32 = 18;
/// Upstream rounds every stored value up to this decimal scale (nano).
const NANO_SCALE: i32 = -9;

impl Quantity {
    /// A quantity of exactly `milli` thousandths, as `resource.NewMilliQuantity` builds.
    pub fn from_milli(milli: i64) -> Self {
        Quantity {
            milli,
            approx: milli as f64 * pow10(-3),
            format: Format::DecimalSI,
        }
    }

    /// Parses a quantity string exactly as `resource.ParseQuantity` does.
    pub fn parse(input: &str) -> Result<Self> {
        let err = |reason: &'static str| Error::Quantity {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(err(FORMAT_WRONG));
        }
        if input == "0" {
            return Ok(Quantity {
                milli: 0,
                approx: 0.0,
                format: Format::DecimalSI,
            });
        }
        let parts = scan(input).ok_or_else(|| err(FORMAT_WRONG))?;
        let (base, exponent, format) = interpret_suffix(parts.suffix).ok_or_else(|| err(SUFFIX))?;

        // The int64 fast path of upstream: the value is kept as an int64 mantissa
        // with a decimal scale; nothing is rounded.
        let (precision, mut scale, mantissa) = match format {
            Format::DecimalExponent | Format::DecimalSI => (
                MAX_INT64_FACTORS - (parts.num.len() + parts.denom.len()) as i32,
                exponent,
                1i64,
            ),
            Format::BinarySI => {
                if exponent >= 0 && parts.denom.is_empty() {
                    // Upstream estimates the decimal precision a binary suffix costs
                    // with float32 arithmetic; reproduce the same truncation.
                    let cost = (exponent as f32 * 3.0 / 10.0) as i32;
                    (
                        15 - parts.num.len() as i32 - cost - 1,
                        0,
                        1i64 << exponent.min(62),
                    )
                } else {
                    (-1, 0, 1i64)
                }
            }
        };
        if precision >= 0 {
            // Go's int32 subtraction wraps: an exponent that wrapped to near i32::MIN above
            // wraps back to a large positive scale here, as upstream computes (found by fuzzing).
            scale = scale.wrapping_sub(parts.denom.len() as i32);
            if scale >= NANO_SCALE {
                let mut value: i64 = 0;
                for b in parts.num.bytes().chain(parts.denom.bytes()) {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(i64::from(b - b'0')))
                        .ok_or_else(|| err(NUMERIC))?;
                }
                if let Some(result) = value.checked_mul(mantissa) {
                    let result = if parts.positive { result } else { -result };
                    return Ok(Quantity {
                        milli: scaled_to_milli(result, scale),
                        approx: if scale == 0 {
                            result as f64
                        } else {
                            result as f64 * pow10(scale)
                        },
                        format,
                    });
                }
            }
        }
        decimal_path(input, &parts, base, exponent, format).ok_or_else(|| err(NUMERIC))
    }

    /// `Quantity.MilliValue()`: the value times 1000, rounded up (away from zero).
    pub fn milli_value(&self) -> i64 {
        self.milli
    }

    /// `Quantity.AsApproximateFloat64()`: mantissa times a power of ten in `f64`.
    pub fn as_approximate_f64(&self) -> f64 {
        self.approx
    }

    /// The format the quantity's suffix selected.
    pub fn format(&self) -> Format {
        self.format
    }
}

struct Parts<'a> {
    positive: bool,
    /// Integer digits without leading zeros ("0" when there were none).
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    /// The numeric text including sign, as the arbitrary-precision path reads it.
    value: &'a str,
    suffix: &'a str,
}

/// Upstream's `parseQuantityString`, byte for byte. `None` is `ErrFormatWrong`.
fn scan(s: &str) -> Option<Parts<'_>> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Some(Parts {
            positive,
            num: "0",
            denom: "",
            value: "0",
            suffix: "",
        });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if pos >= end {
        return Some(Parts {
            positive,
            num,
            denom: "",
            value: s,
            suffix: "",
        });
    }
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
        if pos >= end {
            return Some(Parts {
                positive,
                num,
                denom,
                value: s,
                suffix: "",
            });
        }
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return None;
    }
    Some(Parts {
        positive,
        num,
        denom,
        value,
        suffix: &s[suffix_start..],
    })
}

/// Upstream's `suffixHandler.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((10, e, Format::DecimalSI));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = binary {
        return Some((2, e, Format::BinarySI));
    }
    let rest = suffix.strip_prefix(['e', 'E'])?;
    if rest.is_empty() {
        return None;
    }
    let parsed = parse_go_int64(rest)?;
    // Go converts the parsed exponent with int32(parsed), which wraps.
    Some((10, parsed as i32, Format::DecimalExponent))
}

/// `strconv.ParseInt(s, 10, 64)`: optional sign, decimal digits, range-checked.
pub(crate) fn parse_go_int64(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for b in digits.bytes() {
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|v| -v)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The arbitrary-precision path: exact value, rounded up to nano precision.
fn decimal_path(
    input: &str,
    parts: &Parts<'_>,
    base: u32,
    exponent: i32,
    mut format: Format,
) -> Option<Quantity> {
    let text = parts.value.trim_start_matches(['+', '-']);
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Decimal digits (most significant first) and a power of ten.
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .skip_while(|d| *d == 0)
        .collect();
    let mut power: i64 = -(frac_part.len() as i64);
    if base == 10 {
        power += i64::from(exponent);
    } else {
        for _ in 0..exponent {
            double_digits(&mut digits);
        }
    }
    let negative = input.starts_with('-');
    // Magnitude in nano units, rounded up; saturates far above any cap.
    let mut nanos = to_nanos_round_up(&digits, power + 9);
    let max_units: i128 = i128::from(i64::MAX);
    let mut approx_units: Option<f64> = None;
    if format == Format::BinarySI && nanos > max_units * 1_000_000_000 {
        nanos = max_units * 1_000_000_000;
        approx_units = Some(i64::MAX as f64);
    }
    if format == Format::BinarySI && nanos > 0 && nanos < 1_000_000_000 {
        format = Format::DecimalSI;
    }
    let signed = if negative { -nanos } else { nanos };
    let approx = match approx_units {
        Some(units) => {
            if negative {
                -units
            } else {
                units
            }
        }
        None if nanos == 0 => 0.0,
        None => signed as f64 * pow10(NANO_SCALE),
    };
    Some(Quantity {
        milli: saturate_i64(div_away_from_zero(signed, 1_000_000)),
        approx,
        format,
    })
}

/// Multiplies a big decimal digit string by two in place.
fn double_digits(digits: &mut Vec<u8>) {
    let mut carry = 0u8;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

/// `digits × 10^power`, rounded away from zero to an integer, saturating.
fn to_nanos_round_up(digits: &[u8], power: i64) -> i128 {
    if digits.is_empty() {
        return 0;
    }
    const LIMIT: i128 = i128::MAX / 100;
    let len = digits.len() as i64;
    if power >= 0 {
        if len + power > 37 {
            return LIMIT;
        }
        let mut v: i128 = 0;
        for d in digits {
            v = v * 10 + i128::from(*d);
        }
        for _ in 0..power {
            v *= 10;
        }
        return v;
    }
    let keep = len + power;
    if keep <= 0 {
        return 1;
    }
    if keep > 37 {
        return LIMIT;
    }
    let keep = keep as usize;
    let mut v: i128 = 0;
    for d in &digits[..keep] {
        v = v * 10 + i128::from(*d);
    }
    if digits[keep..].iter().any(|d| *d != 0) {
        v += 1;
    }
    v
}

/// Upstream `int64Amount.AsScaledInt64(Milli)`, saturating instead of wrapping.
fn scaled_to_milli(value: i64, scale: i32) -> i64 {
    let shift = i64::from(scale) + 3;
    if shift >= 0 {
        let mut v = i128::from(value);
        for _ in 0..shift.min(40) {
            v *= 10;
            if v > i128::from(i64::MAX) || v < i128::from(i64::MIN) {
                break;
            }
        }
        saturate_i64(v)
    } else if -shift > 38 {
        // Every digit is a fraction: upstream rounds a non-zero value to ±1.
        value.signum()
    } else {
        let divisor = 10i128.pow((-shift) as u32);
        saturate_i64(div_away_from_zero(i128::from(value), divisor))
    }
}

fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let q = value / divisor;
    if value % divisor != 0 {
        q + value.signum()
    } else {
        q
    }
}

fn saturate_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Go's `math.Pow10`, including its table-driven rounding for negative powers
/// (so that `3 × Pow10(-1)` is `0.30000000000000004`, as upstream computes).
pub(crate) fn pow10(n: i32) -> f64 {
    const TAB: [f64; 32] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31,
    ];
    const POS32: [f64; 10] = [
        1e0, 1e32, 1e64, 1e96, 1e128, 1e160, 1e192, 1e224, 1e256, 1e288,
    ];
    const NEG32: [f64; 11] = [
        1e-0, 1e-32, 1e-64, 1e-96, 1e-128, 1e-160, 1e-192, 1e-224, 1e-256, 1e-288, 1e-320,
    ];
    if (0..=308).contains(&n) {
        let n = n as usize;
        POS32[n / 32] * TAB[n % 32]
    } else if (-323..0).contains(&n) {
        let n = (-n) as usize;
        NEG32[n / 32] / TAB[n % 32]
    } else if n > 0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// `resource.NewMilliQuantity(milli, DecimalSI).String()`.
pub fn format_milli(milli: i64) -> String {
    if milli == 0 {
        return "0".to_string();
    }
    let negative = milli < 0;
    let mut amount = i128::from(milli).abs();
    let mut exponent: i32 = -3;
    while amount >= 10 && amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => {
            amount *= 10;
            exponent -= 1;
        }
        2 => {
            amount *= 100;
            exponent -= 2;
        }
        _ => {}
    }
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => "",
    };
    format!("{}{}{}", if negative { "-" } else { "" }, amount, suffix)
}

/// `resource.NewMilliQuantity(milli, BinarySI).String()`: powers of 1024 when the
/// value is a whole number of at least 1024, decimal otherwise.
pub fn format_milli_binary(milli: i64) -> String {
    if milli == 0 || (milli > -1_024_000 && milli < 1_024_000) || milli % 1000 != 0 {
        return format_milli(milli);
    }
    let units = milli / 1000;
    let negative = units < 0;
    let mut amount = i128::from(units).abs();
    let mut times = 0;
    while amount >= 1024 && amount % 1024 == 0 {
        amount /= 1024;
        times += 1;
    }
    let suffix = match times {
        0 => "",
        1 => "Ki",
        2 => "Mi",
        3 => "Gi",
        4 => "Ti",
        5 => "Pi",
        _ => "Ei",
    };
    format!("{}{}{}", if negative { "-" } else { "" }, amount, suffix)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i64 {
        Quantity::parse(s).unwrap().milli_value()
    }

    #[test]
    fn milli_values_of_plain_and_suffixed_quantities() {
        let table: &[(&str, i64)] = &[
            ("0", 0),
            ("1", 1000),
            ("15.0", 15000),
            ("500m", 500),
            ("1.5", 1500),
            ("0.5", 500),
            (".5", 500),
            ("5.", 5000),
            ("2k", 2_000_000),
            ("1M", 1_000_000_000),
            ("1G", 1_000_000_000_000),
            ("1Ki", 1_024_000),
            ("1Mi", 1_048_576_000),
            ("64Mi", 67_108_864_000),
            ("1Gi", 1_073_741_824_000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e-3", 1),
            ("1e+3", 1_000_000),
            ("-1", -1000),
            ("+2", 2000),
            ("-500m", -500),
            ("007", 7000),
            ("1P", 1_000_000_000_000_000_000),
            ("1.5Gi", 1_610_612_736_000),
        ];
        for (input, want) in table {
            assert_eq!(milli(input), *want, "{input}");
        }
    }

    #[test]
    fn sub_milli_values_round_up_away_from_zero() {
        let table: &[(&str, i64)] = &[
            ("1n", 1),
            ("1u", 1),
            ("999u", 1),
            ("1001u", 2),
            ("0.0001", 1),
            ("1.0001m", 2),
            ("0.0000000001", 1),
            ("-1n", -1),
            ("-1500u", -2),
            ("0.1Ki", 102_400),
            ("0.0001Ki", 103),
        ];
        for (input, want) in table {
            assert_eq!(milli(input), *want, "{input}");
        }
    }

    #[test]
    fn huge_quantities_saturate_instead_of_wrapping() {
        assert_eq!(milli("1E"), i64::MAX);
        assert_eq!(milli("100E"), i64::MAX);
        assert_eq!(milli("1e100"), i64::MAX);
        assert_eq!(milli("-1e100"), i64::MIN);
        assert_eq!(milli("12345678901234567890123"), i64::MAX);
        assert_eq!(milli("8Ei"), i64::MAX);
    }

    #[test]
    fn exponents_wrapping_past_i32_min_wrap_like_upstream_instead_of_panicking() {
        // The exponent is int32(4734375519481495555) = -2147483645 and the six fraction digits
        // take it below i32::MIN: Go wraps to a huge positive scale, so -1 × 10^huge saturates.
        let input = format!("-.000001E{}4734375519481495555", "0".repeat(60));
        let q = Quantity::parse(&input).unwrap();
        assert_eq!(q.milli_value(), i64::MIN);
        assert_eq!(q.as_approximate_f64(), f64::NEG_INFINITY);
        assert_eq!(
            milli("1.5E4294967295"),
            150,
            "int32(4294967295) is -1: 1.5e-1"
        );
    }

    #[test]
    fn degenerate_numbers_are_zero_like_upstream() {
        for input in ["+", "-", ".", "-0", "000", "0.000", "k", "e3"] {
            assert_eq!(milli(input), 0, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for input in [
            "", " 1", "1 ", "abc", "1.5.5", "1e", "1ki", "1K", "1mi", "1Kib", "1ee3", "1e3.5",
            "1µ", "1,5", "--1", "1e+", "0x10", "1Ki3", "e",
        ] {
            assert!(
                Quantity::parse(input).is_err(),
                "{input:?} should not parse"
            );
        }
    }

    #[test]
    fn approximate_float_follows_mantissa_times_power_of_ten() {
        let table: &[(&str, f64)] = &[
            ("0.3", 0.30000000000000004),
            ("0.08", 0.08),
            ("0.1", 0.1),
            ("2", 2.0),
            ("50m", 0.05),
            ("0.05", 0.05),
            ("0.36", 0.36),
            ("1Ki", 1024.0),
            ("0", 0.0),
        ];
        for (input, want) in table {
            let got = Quantity::parse(input).unwrap().as_approximate_f64();
            assert_eq!(got.to_bits(), want.to_bits(), "{input}: {got} != {want}");
        }
        assert_eq!(0.3f64.to_bits(), 0.3f64.to_bits());
        assert_ne!(
            Quantity::parse("0.3").unwrap().as_approximate_f64(),
            0.3,
            "upstream computes 3 x 0.1"
        );
    }

    #[test]
    fn canonical_decimal_strings_of_milli_values() {
        let table: &[(i64, &str)] = &[
            (0, "0"),
            (1500, "1500m"),
            (20000, "20"),
            (2_000_000, "2k"),
            (1000, "1"),
            (1, "1m"),
            (6667, "6667m"),
            (20666, "20666m"),
            (10_000, "10"),
            (100, "100m"),
            (-1500, "-1500m"),
            (1_000_000_000_000_000_000, "1P"),
            (i64::MAX, "9223372036854775807m"),
        ];
        for (v, want) in table {
            assert_eq!(format_milli(*v), *want, "{v}");
        }
    }

    #[test]
    fn canonical_binary_strings_of_milli_values() {
        let table: &[(i64, &str)] = &[
            (1_048_576_000, "1Mi"),
            (1_024_000, "1Ki"),
            (1_536_000, "1536"),
            (500, "500m"),
            (1_000_000, "1k"),
            (1_048_576_500, "1048576500m"),
            (67_108_864_000, "64Mi"),
        ];
        for (v, want) in table {
            assert_eq!(format_milli_binary(*v), *want, "{v}");
        }
    }

    #[test]
    fn go_pow10_matches_table_rounding() {
        assert_eq!(pow10(0), 1.0);
        assert_eq!(pow10(-1), 0.1);
        assert_eq!(pow10(-9), 1.0 / 1e9);
        assert_eq!(pow10(400), f64::INFINITY);
        assert_eq!(pow10(-400), 0.0);
    }
}
