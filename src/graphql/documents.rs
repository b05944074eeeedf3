//! Parsed documents, kept by the SHA-256 of their text.
//!
//! An app sends the same few documents over and over. The first time a text is seen it is
//! checked against the limits and parsed; the parsed document is kept, and the next request
//! with the same text skips the nesting scan, the parse and the document limits (which depend
//! on the text alone). The same store serves Apollo's automatic persisted queries: a client may
//! send only `extensions.persistedQuery.sha256Hash`, and sends the text with the hash when told
//! `PersistedQueryNotFound`.
//!
//! The store is bounded twice, by documents and by the bytes of their text, and forgets the
//! oldest first: a caller sending endless distinct documents costs a bounded amount of memory and
//! evicts, but cannot make anyone's request fail (a forgotten hash is sent again with its text).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use sha2::{Digest, Sha256};

/// The most documents kept.
pub const MAX_DOCUMENTS: usize = 512;
/// The most bytes of query text kept, over all documents.
pub const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of a query's text, as persisted queries name it.
pub fn hash_of(query: &str) -> Hash {
    Sha256::digest(query.as_bytes()).into()
}

/// Reads the 64 lowercase or uppercase hex digits of a SHA-256 hash.
pub fn parse_hash(hex: &str) -> Option<Hash> {
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// A document that passed the limits, and the length of its text.
#[derive(Debug)]
pub struct Parsed {
    pub document: ExecutableDocument,
    text_len: usize,
}

#[derive(Debug, Default)]
struct Kept {
    by_hash: HashMap<Hash, Arc<Parsed>>,
    oldest_first: VecDeque<Hash>,
    text_bytes: usize,
}

/// The documents one process keeps.
#[derive(Debug, Default)]
pub struct Documents {
    kept: Mutex<Kept>,
}

impl Documents {
    pub fn get(&self, hash: &Hash) -> Option<Arc<Parsed>> {
        self.lock().by_hash.get(hash).cloned()
    }

    /// Keeps a document that passed the limits, forgetting the oldest past either bound.
    pub fn keep(&self, hash: Hash, document: ExecutableDocument, text_len: usize) -> Arc<Parsed> {
        let parsed = Arc::new(Parsed { document, text_len });
        if text_len > MAX_TEXT_BYTES {
            return parsed;
        }
        let mut kept = self.lock();
        if let Some(already) = kept.by_hash.get(&hash) {
            return already.clone();
        }
        while kept.by_hash.len() >= MAX_DOCUMENTS || kept.text_bytes + text_len > MAX_TEXT_BYTES {
            let Some(oldest) = kept.oldest_first.pop_front() else {
                break;
            };
            if let Some(gone) = kept.by_hash.remove(&oldest) {
                kept.text_bytes -= gone.text_len;
            }
        }
        kept.by_hash.insert(hash, parsed.clone());
        kept.oldest_first.push_back(hash);
        kept.text_bytes += text_len;
        parsed
    }

    /// How many documents are kept, and the bytes of their text.
    pub fn size(&self) -> (usize, usize) {
        let kept = self.lock();
        (kept.by_hash.len(), kept.text_bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("a valid document")
    }

    #[test]
    fn a_hash_reads_back_as_the_digest_of_its_text() {
        let query = "{ me { externalId } }";
        let hex: String = hash_of(query).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_hash(&hex), Some(hash_of(query)));
        assert_eq!(parse_hash(&hex.to_uppercase()), Some(hash_of(query)));
        assert_eq!(parse_hash("abc"), None);
        assert_eq!(parse_hash(&"zz".repeat(32)), None);
        assert_eq!(parse_hash(&"é".repeat(32)), None);
    }

    #[test]
    fn the_store_forgets_the_oldest_past_its_bounds() {
        let documents = Documents::default();
        for n in 0..MAX_DOCUMENTS + 10 {
            let query = format!("{{ f{n} }}");
            documents.keep(hash_of(&query), document(&query), query.len());
        }
        assert_eq!(documents.size().0, MAX_DOCUMENTS);
        assert!(documents.get(&hash_of("{ f0 }")).is_none());
        let newest = format!("{{ f{} }}", MAX_DOCUMENTS + 9);
        assert!(documents.get(&hash_of(&newest)).is_some());
        // A text larger than the whole store is used once and not kept.
        let huge = "a".repeat(MAX_TEXT_BYTES + 1);
        documents.keep(hash_of(&huge), document("{ x }"), huge.len());
        assert!(documents.get(&hash_of(&huge)).is_none());
        assert!(documents.size().1 <= MAX_TEXT_BYTES);
    }
}
