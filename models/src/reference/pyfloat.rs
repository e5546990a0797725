//! CPython's float rounding and repr, exactly: `round(x, n)` rounds the exact binary
//! value half to even at n decimals (via `_Py_dg_dtoa` mode 3) and reads the decimal
//! string back correctly rounded; `repr(x)` is the shortest round-trip string, fixed
//! notation for decimal exponents -4 < e ≤ 16, else `1e-05` style.

/// `round(x, ndigits)` for `0 ≤ ndigits ≤ 15`, as CPython computes it.
pub fn py_round(x: f64, ndigits: u32) -> f64 {
    if !x.is_finite() || ndigits > 15 {
        return x;
    }
    let bits = x.to_bits();
    let negative = bits >> 63 == 1;
    let exp_bits = ((bits >> 52) & 0x7FF) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // x = ±m·2^e exactly.
    let (m, e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp_bits - 1075)
    };
    if e >= 0 {
        // An integer already (|x| ≥ 2^52): nothing after the decimal point.
        return x;
    }
    // |x|·10^n = m·10^n / 2^s: round that quotient half to even.
    let n = u128::from(m) * 10u128.pow(ndigits);
    let s = (-e) as u32;
    let q = if s >= 128 {
        // n < 2^103 ≤ half of 2^s: below one half, rounds to zero.
        0
    } else {
        let q = n >> s;
        let r = n - (q << s);
        let half = 1u128 << (s - 1);
        if r > half || (r == half && q % 2 == 1) {
            q + 1
        } else {
            q
        }
    };
    let text = format!("{}{q}e-{ndigits}", if negative { "-" } else { "" });
    // A digit string and an exponent always parse; the fallback is unreachable.
    text.parse().unwrap_or(x)
}

/// `repr(x)` of a Python float.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "d.ddde±x".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exp + 1;
    let sign = if x < 0.0 { "-" } else { "" };
    if decpt <= -4 || decpt > 16 {
        let (head, tail) = digits.split_at(1);
        let dot = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let e = decpt - 1;
        return format!(
            "{sign}{head}{dot}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.abs()
        );
    }
    let n = digits.len() as i32;
    if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_is_half_even_on_the_exact_binary_value() {
        // 0.905·1.10 is 0.99550000000000016… in binary: above the half, up.
        assert_eq!(py_round(0.905 * 1.10, 3), 0.996);
        // 2.675 is 2.67499999999999982… : down, the classic surprise.
        assert_eq!(py_round(2.675, 2), 2.67);
        // Exact halves go to even: 0.125 → 0.12, 0.375 → 0.38, 2.5 → 2.
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(0.375, 2), 0.38);
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(py_round(3.5, 0), 4.0);
        assert_eq!(py_round(0.0005, 3), 0.001); // 0.000500000000000000010…: up
        assert_eq!(py_round(0.0015, 3), 0.002); // 0.00150000000000000003…: up
        assert_eq!(py_round(0.0025, 3), 0.003); // 0.00250000000000000005…: up
        assert_eq!(py_round(-0.0625, 3), -0.062);
        assert_eq!(py_round(-1e-300, 3).to_bits(), (-0.0f64).to_bits());
        assert_eq!(py_round(1e300, 3), 1e300);
        assert_eq!(py_round(5e-324, 3), 0.0);
        assert!(py_round(f64::NAN, 3).is_nan());
        assert_eq!(py_round(0.999, 3), 0.999);
        assert_eq!(py_round(0.9975, 3), 0.998); // 0.99750000000000005…
    }

    #[test]
    fn repr_matches_python() {
        for (x, s) in [
            (0.5, "0.5"),
            (50.0, "50.0"),
            (0.5000000000000001, "0.5000000000000001"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.234e17, "1.234e+17"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (-0.25, "-0.25"),
            (0.0, "0.0"),
            (100.0 / 3.0, "33.333333333333336"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(py_repr(x), s, "{x}");
        }
    }
}
