//! What a request may cost, checked before async-graphql parses or validates it.
//!
//! Two checks, each linear in the size of the request:
//! - [`check_nesting`] scans GraphQL or JSON text for bracket nesting before any recursive parser
//!   sees it (pest and serde recurse once a bracket, so deep nesting overflows the stack);
//! - [`check_document`] walks a parsed document once, remembering what each fragment costs, so
//!   a fragment spread many times is counted without being walked again. async-graphql's own
//!   depth and complexity walks follow every spread anew, which is exponential in a chain of
//!   fragments that each spread the next twice; once this check has bounded the size of the
//!   expanded query, their walks are bounded too.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, SelectionSet,
};

pub use crate::config::QueryLimits;

/// The deepest bracket nesting accepted in a query, its variables or a JSON body. Not a setting:
/// it keeps the recursive parsers within their stack, and the deepest real query (GraphiQL's
/// introspection) nests about 30.
pub const MAX_NESTING: usize = 64;

/// The two kinds of text scanned for nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    GraphQl,
    Json,
}

/// Refuses text whose brackets nest deeper than [`MAX_NESTING`]. Brackets inside strings (and,
/// in GraphQL, comments and block strings) do not count. Unbalanced text is left for the parser
/// to report.
pub fn check_nesting(text: &str, syntax: Syntax, what: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "{what} nests brackets more than {MAX_NESTING} levels deep; flatten it"
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'#' if syntax == Syntax::GraphQl => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if syntax == Syntax::GraphQl && bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote stays inside the block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What a selection set costs once every fragment in it is spread.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    /// Selections, arguments and directives, each counted once per place it is spread to.
    size: u64,
    /// The deepest chain of fields, introspection excepted.
    depth: u64,
    aliases: u64,
    /// Fields at the top of the set, with the fields of spreads at the top.
    top_fields: u64,
}

impl Cost {
    fn add(&mut self, other: Cost) {
        self.size = self.size.saturating_add(other.size);
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.top_fields = self.top_fields.saturating_add(other.top_fields);
    }
}

enum Memo {
    InProgress,
    Done(Cost),
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    limits: QueryLimits,
    fragments: HashMap<&'a str, Memo>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, nesting: usize) -> Result<Cost, String> {
        if nesting > MAX_NESTING {
            return Err(format!(
                "The query nests selections and fragments more than {MAX_NESTING} levels deep"
            ));
        }
        let mut cost = Cost::default();
        for selection in &set.items {
            use async_graphql::parser::types::Selection;
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.selection_set(&field.selection_set.node, nesting + 1)?;
                    let introspection = field.name.node.starts_with("__");
                    let own = 1 + field.arguments.len() as u64 + field.directives.len() as u64;
                    cost.add(Cost {
                        size: own.saturating_add(inner.size),
                        depth: if introspection { 0 } else { 1 + inner.depth },
                        aliases: u64::from(field.alias.is_some()).saturating_add(inner.aliases),
                        top_fields: 1,
                    });
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let mut fragment = self.fragment(&spread.fragment_name.node, nesting + 1)?;
                    fragment.size = fragment
                        .size
                        .saturating_add(1 + spread.directives.len() as u64);
                    cost.add(fragment);
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let mut inner = self.selection_set(&inline.selection_set.node, nesting + 1)?;
                    inner.size = inner
                        .size
                        .saturating_add(1 + inline.directives.len() as u64);
                    cost.add(inner);
                }
            }
            // Stop as soon as the answer is known, so the walk itself stays small.
            if cost.size > self.limits.max_complexity as u64 {
                return Ok(cost);
            }
        }
        Ok(cost)
    }

    fn fragment(&mut self, name: &'a str, nesting: usize) -> Result<Cost, String> {
        match self.fragments.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::InProgress) => {
                return Err(format!(
                    "Fragment \"{name}\" spreads itself, directly or through other fragments"
                ));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(definition) = self.doc.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.fragments.insert(name, Memo::InProgress);
        let cost = self.selection_set(&definition.node.selection_set.node, nesting)?;
        self.fragments.insert(name, Memo::Done(cost));
        Ok(cost)
    }

    fn operation(&mut self, operation: &'a OperationDefinition) -> Result<(), String> {
        let limits = self.limits;
        // A walk stopped early by the size bound gives counts that are lower bounds: any one of
        // them over its limit is a true refusal, so the more specific limits are checked first.
        let cost = self.selection_set(&operation.selection_set.node, 0)?;
        if cost.depth > limits.max_depth as u64 {
            return Err(format!(
                "The query is more than {} fields deep (TANDEM_MAX_DEPTH)",
                limits.max_depth
            ));
        }
        if cost.aliases > limits.max_aliases as u64 {
            return Err(format!(
                "The operation uses more than {} aliases (TANDEM_MAX_ALIASES)",
                limits.max_aliases
            ));
        }
        if cost.top_fields > limits.max_root_fields as u64 {
            return Err(format!(
                "The operation asks for more than {} root fields (TANDEM_MAX_ROOT_FIELDS): \
                 split it into several requests",
                limits.max_root_fields
            ));
        }
        if cost.size > limits.max_complexity as u64 {
            return Err(format!(
                "The query is too large: once its fragments are spread it has more than {} \
                 fields, arguments and directives, each of which counts at least 1 toward the \
                 complexity limit of {} (TANDEM_MAX_COMPLEXITY)",
                limits.max_complexity, limits.max_complexity
            ));
        }
        Ok(())
    }
}

/// Refuses a document any of whose operations is over a limit, in time linear in the document.
pub fn check_document(doc: &ExecutableDocument, limits: QueryLimits) -> Result<(), String> {
    let mut walker = Walker {
        doc,
        limits,
        fragments: HashMap::new(),
    };
    match &doc.operations {
        DocumentOperations::Single(operation) => walker.operation(&operation.node),
        DocumentOperations::Multiple(operations) => operations
            .values()
            .try_for_each(|operation| walker.operation(&operation.node)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(query: &str) -> Result<(), String> {
        check_document(&parse_query(query).expect("parses"), QueryLimits::default())
    }

    fn fan_out(levels: usize) -> String {
        let mut query = String::from("query { me { ...F0 } }\n");
        for level in 0..levels {
            query.push_str(&format!(
                "fragment F{level} on Customer {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str(&format!("fragment F{levels} on Customer {{ id }}\n"));
        query
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        let deep = "[".repeat(MAX_NESTING + 1);
        assert!(check_nesting(&deep, Syntax::GraphQl, "The query").is_err());
        assert!(check_nesting(&deep, Syntax::Json, "The body").is_err());
        let quoted = format!("{{ a(s: \"{deep}\") # {deep}\n b(s: \"\"\"{deep}\"\"\") }}");
        assert!(check_nesting(&quoted, Syntax::GraphQl, "The query").is_ok());
        let json = format!("{{\"query\": \"{deep}\", \"x\": \"\\\"{deep}\"}}");
        assert!(check_nesting(&json, Syntax::Json, "The body").is_ok());
        let ok = "[".repeat(MAX_NESTING);
        assert!(check_nesting(&ok, Syntax::Json, "The body").is_ok());
    }

    #[test]
    fn an_exponential_fan_out_of_fragments_is_refused_at_once() {
        let started = std::time::Instant::now();
        let error = check(&fan_out(30)).unwrap_err();
        assert!(error.contains("too large"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(check(&fan_out(3)).is_ok());
    }

    #[test]
    fn each_limit_names_its_setting() {
        let deep = format!("{{ {} }}", "a { ".repeat(13) + "b" + &" }".repeat(13));
        assert!(check(&deep).unwrap_err().contains("TANDEM_MAX_DEPTH"));
        let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        assert!(
            check(&format!("{{ {aliases} }}"))
                .unwrap_err()
                .contains("TANDEM_MAX_ALIASES")
        );
        let roots = "__typename ".repeat(21);
        assert!(
            check(&format!("{{ {roots} }}"))
                .unwrap_err()
                .contains("TANDEM_MAX_ROOT_FIELDS")
        );
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(check(cycle).unwrap_err().contains("spreads itself"));
    }

    #[test]
    fn introspection_does_not_count_toward_depth() {
        let type_ref = "kind name ofType { ".repeat(10) + "name" + &" }".repeat(10);
        let query = format!("{{ __schema {{ types {{ fields {{ type {{ {type_ref} }} }} }} }} }}");
        assert!(check(&query).is_ok());
    }
}
