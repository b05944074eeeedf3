//! Relay-style pages: `first` and an opaque `after` cursor.

use async_graphql::SimpleObject;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::AppError;

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// Where a page stands in the whole list.
#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    /// Whether another page follows this one.
    pub has_next_page: bool,
    /// Whether this page follows another one.
    pub has_previous_page: bool,
    /// Cursor of the first item of this page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of this page; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// A checked page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u64,
    pub after: Option<Uuid>,
}

/// What a paged list costs toward the complexity limit: itself, and what each row asks for
/// times the rows it may return (`first`, 20 when absent, at most 100).
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE) as usize;
    1 + rows.saturating_mul(child_complexity)
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<&str>) -> Result<Self, AppError> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        let after = after
            .map(|cursor| crate::input::identifier("after", cursor))
            .transpose()?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        Ok(Self {
            limit: first as u64,
            after,
        })
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<Uuid, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("v1:").and_then(|id| id.parse().ok()))
        .ok_or_else(|| {
            AppError::bad_input(
                "after",
                "after is not a cursor from this list; pass pageInfo.endCursor",
            )
        })
}

/// Page info for `ids`, the ids of one page in order.
pub fn page_info(ids: &[Uuid], request: PageRequest, has_next_page: bool) -> PageInfo {
    PageInfo {
        has_next_page,
        has_previous_page: request.after.is_some(),
        start_cursor: ids.first().copied().map(encode_cursor),
        end_cursor: ids.last().copied().map(encode_cursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_its_id() {
        let id = Uuid::now_v7();
        let request = PageRequest::parse(Some(5), Some(&encode_cursor(id))).unwrap();
        assert_eq!(request.after, Some(id));
    }

    #[test]
    fn page_sizes_outside_the_limit_and_foreign_cursors_are_refused() {
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(MAX_PAGE_SIZE + 1), None).is_err());
        assert!(PageRequest::parse(None, Some("not-a-cursor")).is_err());
    }
}
