//! Random strings in Crockford's base32 alphabet: digits and letters without I, L, O and U, so
//! codes survive being read aloud or typed from a screenshot.

pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `length` symbols, each carrying 5 bits from the operating system's CSPRNG.
pub fn random(length: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; length];
    getrandom::fill(&mut bytes)?;
    // 256 is a multiple of 32, so taking the low five bits keeps every symbol equally likely.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_use_only_the_alphabet() {
        let text = random(1000).unwrap();
        assert_eq!(text.len(), 1000);
        assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
    }
}
