//! Coupon codes: 80 random bits in Crockford base32, written in groups of four.

use crate::crockford;

const SYMBOLS: usize = 16;

pub fn generate() -> Result<String, getrandom::Error> {
    crockford::random(SYMBOLS).map(|symbols| group(&symbols))
}

/// Reads a code as a shopper typed it: case, hyphens and spaces ignored, `I`/`L` read as `1` and
/// `O` as `0`. Returns the canonical form, or `None` when it cannot be a coupon code.
pub fn parse(input: &str) -> Option<String> {
    let mut symbols = String::with_capacity(SYMBOLS);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if c.is_ascii() && crockford::ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        symbols.push(c);
    }
    (symbols.len() == SYMBOLS).then(|| group(&symbols))
}

fn group(symbols: &str) -> String {
    symbols
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_code_reads_back_in_any_spelling() {
        let code = generate().unwrap();
        assert_eq!(code.len(), 19);
        assert_eq!(parse(&code).as_deref(), Some(code.as_str()));
        assert_eq!(
            parse(&code.to_lowercase().replace('-', "")).as_deref(),
            Some(code.as_str())
        );
    }

    #[test]
    fn other_text_is_not_a_code() {
        assert_eq!(parse("SAVE10"), None);
        assert_eq!(parse("ÄÄÄÄ-AAAA-AAAA-AAAA"), None);
    }
}
