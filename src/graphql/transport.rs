//! GraphQL over HTTP, as the GraphQL-over-HTTP specification describes it: queries by POST
//! (JSON) or GET (URL parameters), mutations by POST only, and the response's media type and
//! status chosen from the `Accept` header. Every request is bounded before it costs anything:
//! the body's size before it is read, its nesting before it is parsed, and each operation's
//! size, depth, aliases and root fields before it is validated; execution has a time limit.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::futures_util::StreamExt;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Request, Response, ServerError, Value, Variables};
use serde_json::{Map, json};

use crate::auth::Viewer;
use crate::config::HttpLimits;
use crate::graphql::limits::{self, Syntax};
use crate::graphql::{TandemSchema, documents, loaders};
use crate::referrals::links::Visitor;
use crate::state::AppState;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The media type of the answer, from the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `application/json`: GraphQL errors answer 200, as most clients expect.
    Json,
    /// `application/graphql-response+json`: a request that could not run answers 4xx.
    GraphQlResponse,
}

impl Format {
    fn from_request(http: &HttpRequest) -> Self {
        let Some(accept) = http.headers().get(header::ACCEPT) else {
            return Self::Json;
        };
        let accept = accept.to_str().unwrap_or_default();
        let quality = |wanted: &str| -> f32 {
            accept
                .split(',')
                .filter_map(|part| {
                    let mut pieces = part.split(';').map(str::trim);
                    let media = pieces.next()?.to_ascii_lowercase();
                    (media == wanted).then(|| {
                        pieces
                            .find_map(|p| p.strip_prefix("q="))
                            .and_then(|q| q.parse::<f32>().ok())
                            .unwrap_or(1.0)
                    })
                })
                .fold(0.0, f32::max)
        };
        let graphql_response = quality(GRAPHQL_RESPONSE);
        if graphql_response > 0.0 && graphql_response >= quality("application/json") {
            Self::GraphQlResponse
        } else {
            Self::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphQlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

/// A request refused at the HTTP level: it gets this status and one GraphQL error.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// One operation as the client sent it.
struct Operation {
    /// The document's text; absent when a persisted query names it by its hash alone.
    query: Option<String>,
    /// `extensions.persistedQuery.sha256Hash` (Apollo's automatic persisted queries).
    persisted: Option<documents::Hash>,
    operation_name: Option<String>,
    variables: Variables,
}

/// What became of one operation.
enum Outcome {
    /// It ran; `data` is there, even if some fields failed.
    Executed(Response),
    /// It could not run: it does not parse, validate, fit the limits, or its variables do not
    /// match their types.
    NotRun(Vec<ServerError>),
    /// It ran out of time and was stopped.
    TimedOut(ServerError),
}

/// What the operations of one request share: who calls, from where, and when its time is up
/// (a batch shares one time limit).
struct Call<'a> {
    schema: &'a TandemSchema,
    state: &'a AppState,
    viewer: Viewer,
    visitor: Visitor,
    deadline: tokio::time::Instant,
}

impl<'a> Call<'a> {
    fn new(schema: &'a TandemSchema, state: &'a AppState, http: &HttpRequest) -> Self {
        let authorization = http
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().unwrap_or_default());
        Self {
            schema,
            state,
            viewer: state.jwt.viewer(authorization, state.clock.now()),
            visitor: crate::server::http::visitor(http, &state.settings.trusted_proxies),
            deadline: tokio::time::Instant::now() + state.settings.http.request_timeout,
        }
    }
}

/// `POST /graphql`: a JSON body holding one operation, or a batch (a JSON array) of them.
pub async fn post(
    schema: web::Data<TandemSchema>,
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let format = Format::from_request(&http);
    let call = Call::new(&schema, &state, &http);
    let limits = state.settings.http;
    // A body sent slowly counts against the same time limit as the work it asks for.
    let body =
        match tokio::time::timeout_at(call.deadline, read_body(&http, payload, &limits)).await {
            Ok(Ok(body)) => body,
            Ok(Err(refusal)) => return refused(format, refusal),
            Err(_) => {
                return refused(
                    format,
                    Refusal {
                        status: StatusCode::REQUEST_TIMEOUT,
                        message: "The request body did not arrive within the time limit \
                              (TANDEM_REQUEST_TIMEOUT)"
                            .into(),
                    },
                );
            }
        };
    match parse_post_body(&body, &limits) {
        Err(refusal) => refused(format, refusal),
        Ok(Body::Single(operation)) => {
            let outcome = call.run(operation, Method::POST).await;
            match outcome {
                Ok(outcome) => answer(format, outcome),
                Err(refusal) => refused(format, refusal),
            }
        }
        Ok(Body::Batch(operations)) => {
            let mut answers = Vec::with_capacity(operations.len());
            for operation in operations {
                match call.run(operation, Method::POST).await {
                    Ok(outcome) => answers.push(outcome_text(outcome)),
                    Err(refusal) => return refused(format, refusal),
                }
            }
            respond(format, StatusCode::OK, format!("[{}]", answers.join(",")))
        }
    }
}

/// `GET /graphql`: a query in the URL's parameters, or GraphiQL for a browser.
pub async fn get(
    schema: web::Data<TandemSchema>,
    state: web::Data<AppState>,
    http: HttpRequest,
) -> HttpResponse {
    let format = Format::from_request(&http);
    let params = match web::Query::<HashMap<String, String>>::from_query(http.query_string()) {
        Ok(params) => params
            .into_inner()
            .into_iter()
            .map(|(key, value)| (key, serde_json::Value::String(value)))
            .collect::<Map<_, _>>(),
        Err(error) => {
            return refused(
                format,
                Refusal::bad_request(format!("The URL's parameters cannot be read: {error}")),
            );
        }
    };
    if state.settings.playground && !params.contains_key("query") && accepts_html(&http) {
        return HttpResponse::Ok()
            .content_type(header::ContentType::html())
            .body(crate::server::graphiql::page());
    }
    let call = Call::new(&schema, &state, &http);
    // GET parameters are strings; `variables` and `extensions` hold JSON text.
    let operation = match parse_params(params, true) {
        Ok(operation) => operation,
        Err(refusal) => return refused(format, refusal),
    };
    match call.run(operation, Method::GET).await {
        Ok(outcome) => answer(format, outcome),
        Err(refusal) => {
            let mut response = refused(format, refusal);
            if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            response
        }
    }
}

fn accepts_html(http: &HttpRequest) -> bool {
    http.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// Reads the body, refusing one over the limit before reading it when its length is declared,
/// and as soon as it passes the limit when it is not.
async fn read_body(
    http: &HttpRequest,
    mut payload: web::Payload,
    limits: &HttpLimits,
) -> Result<web::BytesMut, Refusal> {
    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "The request body is larger than {} bytes (TANDEM_MAX_BODY_BYTES)",
            limits.max_body_bytes
        ),
    };
    let content_type = http
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if media != "application/json" {
        return Err(Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "Send the request as JSON, with the header Content-Type: application/json"
                .into(),
        });
    }
    let declared = http
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            Refusal::bad_request(format!("The request body could not be read: {error}"))
        })?;
        if body.len() + chunk.len() > limits.max_body_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

enum Body {
    Single(Operation),
    Batch(Vec<Operation>),
}

fn parse_post_body(body: &[u8], limits: &HttpLimits) -> Result<Body, Refusal> {
    if body.is_empty() {
        return Err(Refusal::bad_request(
            "The request body is empty; send {\"query\": \"…\"}",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Refusal::bad_request("The request body is not UTF-8 text"))?;
    limits::check_nesting(text, Syntax::Json, "The request body").map_err(Refusal::bad_request)?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| Refusal::bad_request(format!("The request body is not JSON: {error}")))?;
    match value {
        serde_json::Value::Array(items) => {
            if limits.max_batch == 0 {
                return Err(Refusal::bad_request(
                    "Batches are turned off (TANDEM_MAX_BATCH=0); send one operation a request",
                ));
            }
            if items.len() > limits.max_batch {
                return Err(Refusal::bad_request(format!(
                    "The batch holds {} operations; the limit is {} (TANDEM_MAX_BATCH)",
                    items.len(),
                    limits.max_batch
                )));
            }
            if items.is_empty() {
                return Err(Refusal::bad_request("The batch is empty"));
            }
            items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::Object(params) => parse_params(params, false),
                    _ => Err(Refusal::bad_request(
                        "Each operation in a batch must be a JSON object with a query",
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Body::Batch)
        }
        serde_json::Value::Object(params) => parse_params(params, false).map(Body::Single),
        _ => Err(Refusal::bad_request(
            "The request body must be a JSON object like {\"query\": \"…\", \"variables\": {…}}",
        )),
    }
}

/// The parameters of one operation: `query` (a string, required unless
/// `extensions.persistedQuery` names the document by its hash), `operationName` (a string or
/// null), `variables` and `extensions` (objects or null; JSON text when `encoded`, as in a URL).
/// Other keys are ignored.
fn parse_params(
    mut params: Map<String, serde_json::Value>,
    encoded: bool,
) -> Result<Operation, Refusal> {
    let query = match params.remove("query") {
        Some(serde_json::Value::String(query)) => Some(query),
        None | Some(serde_json::Value::Null) => None,
        Some(_) => return Err(Refusal::bad_request("The query parameter must be a string")),
    };
    let operation_name = match params.remove("operationName") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) => Some(name),
        Some(_) => {
            return Err(Refusal::bad_request(
                "The operationName parameter must be a string or null",
            ));
        }
    };
    let mut object = |name: &str| -> Result<Option<Map<String, serde_json::Value>>, Refusal> {
        let value = match params.remove(name) {
            Some(serde_json::Value::String(text)) if encoded => {
                limits::check_nesting(&text, Syntax::Json, &format!("The {name} parameter"))
                    .map_err(Refusal::bad_request)?;
                serde_json::from_str(&text).map_err(|error| {
                    Refusal::bad_request(format!("The {name} parameter is not JSON: {error}"))
                })?
            }
            Some(value) => value,
            None => serde_json::Value::Null,
        };
        match value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Object(map) => Ok(Some(map)),
            _ => Err(Refusal::bad_request(format!(
                "The {name} parameter must be a JSON object or null"
            ))),
        }
    };
    let variables = object("variables")?
        .map(|map| Variables::from_json(serde_json::Value::Object(map)))
        .unwrap_or_default();
    let persisted = match object("extensions")?.and_then(|mut e| e.remove("persistedQuery")) {
        None | Some(serde_json::Value::Null) => None,
        Some(persisted) => Some(persisted_hash(&persisted)?),
    };
    if query.is_none() && persisted.is_none() {
        return Err(Refusal::bad_request(
            "The request has no query: send {\"query\": \"{ … }\"}",
        ));
    }
    Ok(Operation {
        query,
        persisted,
        operation_name,
        variables,
    })
}

/// `extensions.persistedQuery`: `{"version": 1, "sha256Hash": "<64 hex digits>"}`.
fn persisted_hash(persisted: &serde_json::Value) -> Result<documents::Hash, Refusal> {
    let version = persisted.get("version").and_then(serde_json::Value::as_i64);
    if version != Some(1) {
        return Err(Refusal::bad_request(
            "extensions.persistedQuery.version must be 1 (Apollo's automatic persisted queries)",
        ));
    }
    persisted
        .get("sha256Hash")
        .and_then(serde_json::Value::as_str)
        .and_then(documents::parse_hash)
        .ok_or_else(|| {
            Refusal::bad_request(
                "extensions.persistedQuery.sha256Hash must be the SHA-256 of the query, as 64 \
                 hex digits",
            )
        })
}

/// A GraphQL error with `extensions.code`, for what is wrong before the document runs.
fn coded_error(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

impl Call<'_> {
    /// Runs one operation ([`Call::execute`]) and records it: on the request's span, and in the
    /// operation metrics.
    async fn run(&self, operation: Operation, method: Method) -> Result<Outcome, Refusal> {
        let started = std::time::Instant::now();
        let operation_name = operation.operation_name.clone();
        let (label, outcome) = self.execute(operation, method).await?;
        let (label, result) = match &outcome {
            Outcome::Executed(response) if response.errors.is_empty() => (label, "ok"),
            Outcome::Executed(_) => (label, "errors"),
            // A request that did not validate may name fields the schema does not have.
            Outcome::NotRun(_) => ("invalid".to_owned(), "refused"),
            Outcome::TimedOut(_) => (label, "timeout"),
        };
        let role = match &self.viewer {
            Viewer::Anonymous => "anonymous",
            Viewer::Authenticated(principal) => principal.role.as_str(),
            Viewer::Rejected(_) => "rejected",
        };
        let span = tracing::Span::current();
        span.record("operation", label.as_str());
        if let Some(name) = &operation_name {
            let name: String = name.chars().take(64).collect();
            span.record("operation_name", name.as_str());
        }
        span.record("role", role);
        ::metrics::counter!(
            "tandem_graphql_operations_total",
            "operation" => label.clone(),
            "outcome" => result
        )
        .increment(1);
        ::metrics::histogram!("tandem_graphql_operation_duration_seconds", "operation" => label)
            .record(started.elapsed().as_secs_f64());
        Ok(outcome)
    }

    /// Checks one operation against the limits, then runs it within the time limit. Returns it
    /// with its label, `type.firstRootField`.
    async fn execute(
        &self,
        operation: Operation,
        method: Method,
    ) -> Result<(String, Outcome), Refusal> {
        let limits = self.state.settings.http;
        let invalid = |outcome| Ok(("invalid".to_owned(), outcome));
        let hash = match (&operation.query, operation.persisted) {
            (Some(query), claimed) => {
                let hash = documents::hash_of(query);
                if claimed.is_some_and(|claimed| claimed != hash) {
                    return invalid(Outcome::NotRun(vec![coded_error(
                        "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query \
                         sent with it",
                        "PERSISTED_QUERY_HASH_MISMATCH",
                    )]));
                }
                hash
            }
            (None, Some(claimed)) => claimed,
            (None, None) => {
                return Err(Refusal::bad_request(
                    "The request has no query: send {\"query\": \"{ … }\"}",
                ));
            }
        };
        // A text seen before passed the limits then: they depend on the text alone.
        let parsed = match (self.state.documents.get(&hash), &operation.query) {
            (Some(parsed), _) => parsed,
            (None, None) => {
                // Apollo's clients match this message and send the text with the hash next.
                return invalid(Outcome::NotRun(vec![coded_error(
                    "PersistedQueryNotFound",
                    "PERSISTED_QUERY_NOT_FOUND",
                )]));
            }
            (None, Some(query)) => {
                if let Err(message) = limits::check_nesting(query, Syntax::GraphQl, "The query") {
                    return invalid(Outcome::NotRun(vec![ServerError::new(message, None)]));
                }
                let document = match async_graphql::parser::parse_query(query) {
                    Ok(document) => document,
                    Err(error) => return invalid(Outcome::NotRun(vec![error.into()])),
                };
                if let Err(message) = limits::check_document(&document, limits.query) {
                    return invalid(Outcome::NotRun(vec![ServerError::new(message, None)]));
                }
                self.state.documents.keep(hash, document, query.len())
            }
        };
        let document = &parsed.document;
        let label = operation_label(document, operation.operation_name.as_deref());
        let keep_reads = operation_type(document, operation.operation_name.as_deref())
            == Some(OperationType::Query);
        if method == Method::GET && !keep_reads {
            return Err(Refusal {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "Only queries can be sent with GET; send mutations with POST".into(),
            });
        }
        let mut request = Request::new(operation.query.unwrap_or_default())
            .variables(operation.variables)
            .data(self.viewer.clone())
            .data(self.visitor.clone())
            .data(loaders::for_request(
                self.state.db.clone(),
                self.state.clock.clone(),
                self.state.program.clone(),
                keep_reads,
            ));
        if let Some(name) = operation.operation_name {
            request = request.operation_name(name);
        }
        request.set_parsed_query(document.clone());
        let Ok(response) =
            tokio::time::timeout_at(self.deadline, self.schema.execute(request)).await
        else {
            let mut error = ServerError::new(
                format!(
                    "The request took longer than {} and was stopped (TANDEM_REQUEST_TIMEOUT); \
                     ask for less, or try again",
                    humantime::format_duration(limits.request_timeout)
                ),
                None,
            );
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "TIMEOUT");
            return Ok((label, Outcome::TimedOut(error)));
        };
        // Errors raised before any resolver ran carry no path, and leave no data.
        if response.data == Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty())
        {
            let mut errors = response.errors;
            for error in &mut errors {
                if error.message == "Query is too complex." {
                    error.message = format!(
                        "The query's complexity is above the limit of {} \
                         (TANDEM_MAX_COMPLEXITY): a field costs 1, and a paged list costs what \
                         one row asks for times its `first`; ask for fewer rows or fields",
                        limits.query.max_complexity
                    );
                }
            }
            return Ok((label, Outcome::NotRun(errors)));
        }
        Ok((label, Outcome::Executed(response)))
    }
}

/// `type.firstRootField` of the operation a request selects (`query.me`), or `type.fragment`
/// when it starts with a fragment.
pub(crate) fn operation_label(
    document: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> String {
    use async_graphql::parser::types::Selection;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) => operations.values().next(),
    };
    let Some(operation) = operation else {
        return "invalid".to_owned();
    };
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let first = operation
        .node
        .selection_set
        .node
        .items
        .first()
        .map(|item| match &item.node {
            Selection::Field(field) => field.node.name.node.to_string(),
            _ => "fragment".to_owned(),
        });
    format!("{kind}.{}", first.unwrap_or_default())
}

/// The type of the operation a request selects, when it names one that exists.
pub(crate) fn operation_type(
    document: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| operation.node.ty)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .values()
            .next()
            .map(|operation| operation.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Errors raised before any resolver ran (parse, validation, limits, variable types) are the
/// client's request at fault; they get the code every other client error has.
fn label_request_errors(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Value::String("BAD_USER_INPUT".into()));
        }
    }
}

/// One operation's answer as JSON text. An executed operation's response is written straight to
/// text: its objects keep the order of the query's fields, as the GraphQL specification asks
/// (a detour through `serde_json::Value` would sort them), and it is not built twice.
fn outcome_text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Executed(mut response) => {
            label_request_errors(&mut response.errors);
            serde_json::to_string(&response).unwrap_or_else(|_| json!({ "data": null }).to_string())
        }
        Outcome::NotRun(mut errors) => {
            label_request_errors(&mut errors);
            json!({ "errors": errors }).to_string()
        }
        Outcome::TimedOut(error) => json!({ "data": null, "errors": [error] }).to_string(),
    }
}

fn answer(format: Format, outcome: Outcome) -> HttpResponse {
    let status = match (&outcome, format) {
        (Outcome::NotRun(_), Format::GraphQlResponse) => StatusCode::BAD_REQUEST,
        (Outcome::TimedOut(_), Format::GraphQlResponse) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    respond(format, status, outcome_text(outcome))
}

fn refused(format: Format, refusal: Refusal) -> HttpResponse {
    let code = if refusal.status == StatusCode::REQUEST_TIMEOUT {
        "TIMEOUT"
    } else {
        "BAD_USER_INPUT"
    };
    let body = json!({
        "errors": [{
            "message": refusal.message,
            "extensions": { "code": code },
        }]
    });
    respond(format, refusal.status, body.to_string())
}

fn respond(format: Format, status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .body(body)
}
