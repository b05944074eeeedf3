//! The bounds on everything a client sends, in one place so that each kind of value is checked
//! the same way everywhere and before any database sees it (PostgreSQL refuses a NUL byte that
//! SQLite stores; here both refuse it alike). Every refusal is `BAD_USER_INPUT`, names the field
//! and says the limit.

use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::AppError;

/// Ids and codes: externalIds, product ids, referral and coupon codes, device ids.
pub const MAX_ID_CHARS: usize = 128;
/// Names of people, products, campaigns and channels.
pub const MAX_NAME_CHARS: usize = 200;
/// Email addresses (RFC 5321's limit on a path).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Free text such as an invitation's note or a review's note.
pub const MAX_MESSAGE_CHARS: usize = 2_000;
/// URLs.
pub const MAX_URL_CHARS: usize = 2_048;
/// Any amount of money or points, in minor units: 10,000,000.00 in a two-decimal currency.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
/// How many of one product a line may hold.
pub const MAX_QUANTITY: i64 = 10_000;
/// Lines in one order or cart.
pub const MAX_LINES: usize = 100;

/// The window every date a client sends must fall in, the same for every field: four-digit
/// years, which every backend stores and sorts alike and whose arithmetic (a month on, a
/// qualifying window, an expiry) cannot leave what chrono can represent.
pub const EARLIEST_DATE: &str = "0001-01-01T00:00:00Z";
/// See [`EARLIEST_DATE`].
pub const LATEST_DATE: &str = "9999-12-31T23:59:59Z";

fn date_window() -> RangeInclusive<DateTime<Utc>> {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let start = day(1, 1, 1)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let end = day(9999, 12, 31)
        .and_hms_opt(23, 59, 59)
        .unwrap_or_default()
        .and_utc();
    start..=end
}

/// A date inside [`EARLIEST_DATE`] ..= [`LATEST_DATE`].
pub fn moment(field: &str, value: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    if date_window().contains(&value) {
        return Ok(value);
    }
    Err(AppError::bad_input(
        field,
        format!("{field} must be between {EARLIEST_DATE} and {LATEST_DATE} (UTC)"),
    ))
}

/// [`moment`], for a date that may be absent.
pub fn optional_moment(
    field: &str,
    value: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    value.map(|v| moment(field, v)).transpose()
}

/// The first control character in `value`, if any. Free text may hold line breaks and tabs.
fn control_character(value: &str, allow_line_breaks: bool) -> Option<char> {
    value
        .chars()
        .find(|c| c.is_control() && !(allow_line_breaks && matches!(c, '\n' | '\r' | '\t')))
}

fn refuse_control(field: &str, value: &str, allow_line_breaks: bool) -> Result<(), AppError> {
    match control_character(value, allow_line_breaks) {
        Some(c) => Err(AppError::bad_input(
            field,
            format!(
                "{field} must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

fn refuse_long(field: &str, value: &str, max: usize) -> Result<(), AppError> {
    let length = value.chars().count();
    if length > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be at most {max} characters (got {length})"),
        ));
    }
    Ok(())
}

/// Text of at most `max` characters with no control characters; trimmed; blank reads as absent.
fn bounded(field: &str, value: &str, max: usize) -> Result<Option<String>, AppError> {
    refuse_long(field, value, max)?;
    refuse_control(field, value, false)?;
    let value = value.trim();
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// Required text of at most `max` characters with no control characters; trimmed.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    bounded(field, value, max)?
        .ok_or_else(|| AppError::bad_input(field, format!("{field} must not be empty")))
}

/// A required id or code: at most [`MAX_ID_CHARS`], no control characters, not blank.
pub fn identifier(field: &str, value: &str) -> Result<String, AppError> {
    text(field, value, MAX_ID_CHARS)
}

/// An optional id or code; blank reads as absent.
pub fn optional_identifier(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    value.map_or(Ok(None), |v| bounded(field, v, MAX_ID_CHARS))
}

/// A required name: at most [`MAX_NAME_CHARS`], no control characters, not blank.
pub fn name(field: &str, value: &str) -> Result<String, AppError> {
    text(field, value, MAX_NAME_CHARS)
}

/// An optional name; blank reads as absent.
pub fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    value.map_or(Ok(None), |v| bounded(field, v, MAX_NAME_CHARS))
}

/// Optional free text of at most [`MAX_MESSAGE_CHARS`]; line breaks and tabs are allowed, other
/// control characters are not; blank reads as absent.
pub fn optional_message(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    let Some(value) = value else {
        return Ok(None);
    };
    refuse_long(field, value, MAX_MESSAGE_CHARS)?;
    refuse_control(field, value, true)?;
    let value = value.trim();
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// A required absolute `http` or `https` URL of at most [`MAX_URL_CHARS`], parsed by a real URL
/// parser and stored in its normal form. Whitespace and control characters anywhere are refused
/// (a URL parser would silently drop a CR or LF, hiding what was sent).
pub fn http_url(field: &str, value: &str) -> Result<String, AppError> {
    refuse_long(field, value, MAX_URL_CHARS)?;
    refuse_control(field, value, false)?;
    let value = value.trim();
    if value.chars().any(char::is_whitespace) {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not contain spaces; percent-encode them as %20"),
        ));
    }
    let url = url::Url::parse(value).map_err(|error| {
        AppError::bad_input(
            field,
            format!("{field} is not an absolute URL like https://shop.example/page ({error})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(AppError::bad_input(
            field,
            format!(
                "{field} must be an http:// or https:// URL with a host; got a {}: URL",
                url.scheme()
            ),
        ));
    }
    let normal: String = url.into();
    refuse_long(field, &normal, MAX_URL_CHARS)?;
    Ok(normal)
}

/// An optional URL; blank reads as absent.
pub fn optional_http_url(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => http_url(field, v).map(Some),
    }
}

/// A whole number within `range`.
pub fn int_in(field: &str, value: i64, range: RangeInclusive<i64>) -> Result<i64, AppError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            format!(
                "{field} must be from {} to {} (got {value})",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// A list of at most `max` entries.
pub fn list_len(field: &str, len: usize, max: usize) -> Result<(), AppError> {
    if len > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} may hold at most {max} entries (got {len})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: AppError) -> String {
        match error {
            AppError::BadUserInput { field, .. } => field.unwrap_or_default(),
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn ids_refuse_control_characters_length_and_blank() {
        assert_eq!(identifier("externalId", " c-1 ").unwrap(), "c-1");
        for bad in ["a\0b", "a\u{7f}", "a\u{85}b", "", "   ", &"x".repeat(129)] {
            let error = identifier("externalId", bad).unwrap_err();
            assert!(error.to_string().contains("externalId"), "{error}");
            assert_eq!(field_of(error), "externalId");
        }
        assert!(identifier("id", &"é".repeat(128)).is_ok());
    }

    #[test]
    fn messages_keep_line_breaks_but_not_other_control_characters() {
        assert_eq!(
            optional_message("message", Some("Hi\nthere\t!")).unwrap(),
            Some("Hi\nthere\t!".into())
        );
        assert!(optional_message("message", Some("a\u{1b}[31m")).is_err());
        assert!(optional_message("message", Some(&"x".repeat(2001))).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert_eq!(
            http_url("url", "https://shop.example/a?b=c#d").unwrap(),
            "https://shop.example/a?b=c#d"
        );
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative/path",
            "https://shop.example/\r\nSet-Cookie: x=y",
            "https://shop.example/a b",
            "http://",
            "ftp://shop.example/file",
            "mailto:someone@shop.example",
        ] {
            assert!(http_url("url", bad).is_err(), "{bad}");
        }
        let long = format!("https://shop.example/{}", "a".repeat(2048));
        assert!(
            http_url("url", &long)
                .unwrap_err()
                .to_string()
                .contains("2048")
        );
    }

    #[test]
    fn ints_name_their_range() {
        assert_eq!(int_in("quantity", 3, 1..=10).unwrap(), 3);
        let error = int_in("quantity", 0, 1..=10).unwrap_err();
        assert!(error.to_string().contains("from 1 to 10"), "{error}");
    }
}
