//! Generated documents and bodies, sent to the real server: deep nesting, fragment fan-outs,
//! long lists, odd Unicode, wrong shapes and bytes that are not text. Whatever comes, the server
//! answers each within a bound with a JSON GraphQL body, never a 5xx or an INTERNAL error, and
//! keeps serving. The seed is printed; `TANDEM_FUZZ_SEED=N` replays a run.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::TestApp;

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIELDS: &[&str] = &[
    "me",
    "customers",
    "customers(first: 100)",
    "referrals(first: 3)",
    "activeCampaign",
    "campaigns",
    "referralCode(code: \"ABCD1234\")",
    "emailDeliveries",
    "edges",
    "node",
    "id",
    "email",
    "referrer",
    "referee",
    "rewards",
    "__typename",
    "__schema",
    "types",
    "fields",
    "name",
    "ofType",
    "noSuchField",
];

const ODD: &[&str] = &[
    "\u{0}",
    "\u{7}",
    "\u{1b}",
    "\u{85}",
    "\u{feff}",
    "\u{202e}",
    "\u{200d}",
    "\u{10ffff}",
    "\u{301}",
    "💥",
    "é",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "#",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\n",
    "\r",
    "\t",
    "...",
    "$",
    "@",
    ":",
    "\"\"\"",
    "query",
    "mutation",
    "fragment",
    "on",
];

fn selection(rng: &mut Rng, depth: usize, fragments: usize) -> String {
    let count = 1 + rng.below(4);
    let mut out = String::new();
    for _ in 0..count {
        if fragments > 0 && rng.chance(20) {
            out.push_str(&format!("...F{} ", rng.below(fragments)));
            continue;
        }
        if rng.chance(15) {
            out.push_str(&format!("a{}: ", rng.below(1000)));
        }
        out.push_str(rng.pick::<&str>(FIELDS));
        if rng.chance(10) {
            out.push_str(" @skip(if: false)");
        }
        if depth > 0 && rng.chance(60) {
            out.push_str(" { ");
            out.push_str(&selection(rng, depth - 1, fragments));
            out.push_str(" } ");
        } else {
            out.push(' ');
        }
    }
    out
}

fn document(rng: &mut Rng) -> String {
    match rng.below(7) {
        // Deep nesting of one kind of bracket, balanced or not.
        0 => {
            let depth = rng.below(3_000);
            let (open, close) = *rng.pick(&[("[", "]"), ("{", "}"), ("(", ")")]);
            let tail = if rng.chance(50) {
                close.repeat(depth)
            } else {
                String::new()
            };
            format!(
                "{{ referralCode(code: {}{tail}) {{ code }} }}",
                open.repeat(depth)
            )
        }
        // A chain of fragments, each spreading the next several times.
        1 => {
            let levels = rng.below(40);
            let fan = 1 + rng.below(4);
            let mut query = String::from("query { activeCampaign { ...F0 } }\n");
            for level in 0..levels {
                let spreads = format!("...F{} ", level + 1).repeat(fan);
                query.push_str(&format!("fragment F{level} on Campaign {{ {spreads} }}\n"));
            }
            query.push_str(&format!("fragment F{levels} on Campaign {{ id }}\n"));
            query
        }
        // A long list literal.
        2 => {
            let length = rng.below(20_000);
            format!(
                "{{ referralCode(code: [{}]) {{ code }} }}",
                "1,".repeat(length)
            )
        }
        // Odd Unicode and GraphQL punctuation, shuffled.
        3 => (0..rng.below(400)).map(|_| *rng.pick(ODD)).collect(),
        // A random selection tree, perhaps with fragments, aliases and directives.
        _ => {
            let fragments = rng.below(4);
            let kind = *rng.pick(&["", "query", "query Q", "mutation", "subscription"]);
            let depth = rng.below(16);
            let mut query = format!("{kind} {{ {} }}\n", selection(rng, depth, fragments));
            for f in 0..fragments {
                let on = *rng.pick(&["Query", "Customer", "Campaign", "Nope"]);
                let depth = rng.below(6);
                query.push_str(&format!(
                    "fragment F{f} on {on} {{ {} }}\n",
                    selection(rng, depth, fragments)
                ));
            }
            query
        }
    }
}

fn json_value(rng: &mut Rng, depth: usize) -> Value {
    match if depth == 0 {
        rng.below(4)
    } else {
        rng.below(7)
    } {
        0 => Value::Null,
        1 => json!(rng.next() as i64),
        2 => json!(rng.chance(50)),
        3 => Value::String((0..rng.below(30)).map(|_| *rng.pick(ODD)).collect()),
        4 | 5 => Value::Array(
            (0..rng.below(4))
                .map(|_| json_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|i| (format!("k{i}"), json_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0 => {
            let depth = rng.below(5_000);
            format!(
                "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}{}}}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            )
            .into_bytes()
        }
        1 => json_value(rng, 8).to_string().into_bytes(),
        2 => (0..rng.below(2_000)).map(|_| rng.next() as u8).collect(),
        3 => {
            let batch: Vec<Value> = (0..rng.below(15))
                .map(|_| json!({ "query": document(rng) }))
                .collect();
            Value::Array(batch).to_string().into_bytes()
        }
        _ => json!({
            "query": if rng.chance(90) { json!(document(rng)) } else { json_value(rng, 2) },
            "variables": if rng.chance(70) { json!({}) } else { json_value(rng, 6) },
            "operationName": if rng.chance(80) { Value::Null } else { json_value(rng, 1) },
        })
        .to_string()
        .into_bytes(),
    }
}

fn check(seed: u64, case: usize, status: u16, text: &str) {
    let context = format!("seed {seed}, case {case}: status {status}, body {text:.300}");
    assert!(
        [200, 400, 405, 413, 415].contains(&status),
        "unexpected status; {context}"
    );
    let body: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON; {context}"));
    let answers = match &body {
        Value::Array(items) => items.clone(),
        single => vec![single.clone()],
    };
    for answer in answers {
        assert!(
            answer.get("data").is_some() || answer.get("errors").is_some(),
            "neither data nor errors; {context}"
        );
        for error in answer["errors"].as_array().into_iter().flatten() {
            assert_ne!(error["extensions"]["code"], "INTERNAL", "{context}");
            assert!(
                error["extensions"]["code"].is_string(),
                "no code; {context}"
            );
        }
    }
}

#[tokio::test]
async fn generated_documents_and_bodies_never_crash_the_server_or_reach_internal() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let seed = std::env::var("TANDEM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fuzz seed: {seed} (TANDEM_FUZZ_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let tokens = [
        None,
        Some(app.admin_token()),
        Some(app.service_token()),
        Some(app.customer_token("ann")),
    ];
    let url = format!("{}/graphql", app.address);
    for case in 0..300 {
        let token = rng.pick(&tokens).clone();
        let get = rng.chance(20);
        let query = document(&mut rng);
        // Long URLs are refused by the client itself (and by proxies): GET carries short ones.
        let request = if get && query.len() <= 4_000 {
            app.client.get(&url).query(&[("query", query)])
        } else {
            let content_type = if rng.chance(95) {
                "application/json"
            } else {
                "text/plain"
            };
            app.client
                .post(&url)
                .header("content-type", content_type)
                .body(body(&mut rng))
        };
        let request = match (&token, rng.chance(30)) {
            (Some(token), _) => request.bearer_auth(token),
            (None, true) => request.header("accept", "application/graphql-response+json"),
            (None, false) => request,
        };
        let response = tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .unwrap_or_else(|_| panic!("seed {seed}, case {case}: no answer within 10 s"))
            .unwrap_or_else(|e| {
                let e: String = e.to_string().chars().take(300).collect();
                panic!("seed {seed}, case {case}: the server hung up: {e}")
            });
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        check(seed, case, status, &text);
    }
    app.assert_still_serves().await;
}
