//! Customers: registration, look-up and updates.

pub mod code;
pub mod email;
pub mod locks;
pub mod service;

pub use code::ReferralCode;
pub use email::EmailAddress;

/// The longest first name shown to the other side or put in an email header.
const MAX_FIRST_NAME_CHARS: usize = 40;

/// The first word of a name: all that one side of a referral sees of the other, and all of a
/// name that reaches an email's subject. Characters that change how text is shown without
/// being seen (bidirectional overrides, zero-width and other formatting characters, controls)
/// are dropped first, and so are MIME encoded-words (`=?utf-8?b?…?=`), which a mail client
/// would decode into text the checks never saw.
pub fn first_name(name: Option<&str>) -> Option<String> {
    let visible: String = name?
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !is_invisible(*c))
        .collect();
    let first = visible
        .split_whitespace()
        .find(|word| !(word.contains("=?") || word.contains("?=")))?;
    Some(first.chars().take(MAX_FIRST_NAME_CHARS).collect())
}

/// Controls, and the format characters (Unicode category Cf) a reader cannot see: bidirectional
/// marks, embeddings, overrides and isolates, zero-width characters, invisible operators,
/// interlinear annotations and tags.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::first_name;

    #[test]
    fn a_first_name_keeps_the_first_visible_word_only() {
        assert_eq!(first_name(Some("Ann Lee")).as_deref(), Some("Ann"));
        assert_eq!(first_name(Some("  Zoë  ")).as_deref(), Some("Zoë"));
        assert_eq!(
            first_name(Some("Your account is suspended")).as_deref(),
            Some("Your")
        );
        assert_eq!(first_name(Some("")), None);
        assert_eq!(first_name(None), None);
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_dropped() {
        assert_eq!(
            first_name(Some("\u{202E}gnp.exe")).as_deref(),
            Some("gnp.exe")
        );
        assert_eq!(
            first_name(Some("A\u{200B}n\u{2066}n\u{FEFF}")).as_deref(),
            Some("Ann")
        );
        assert_eq!(first_name(Some("\u{202E}\u{200F}")), None);
        assert_eq!(first_name(Some("Ann\r\nBcc: x@y")).as_deref(), Some("Ann"));
    }

    #[test]
    fn encoded_words_never_reach_a_header() {
        assert_eq!(
            first_name(Some("=?utf-8?b?WW91ciBhY2NvdW50?= Bob")).as_deref(),
            Some("Bob")
        );
        assert_eq!(first_name(Some("=?utf-8?q?x?=")), None);
    }

    #[test]
    fn a_long_first_name_is_cut() {
        let long = "a".repeat(500);
        assert_eq!(first_name(Some(&long)).unwrap().chars().count(), 40);
    }
}
