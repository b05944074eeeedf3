//! GraphiQL, served by the binary: the page at `GET /graphql` (for a browser) and its assets at
//! `/graphiql/…`, embedded at build time from pinned npm packages (see build.rs). The page loads
//! nothing from anywhere else, so it works with no internet.

use actix_web::http::header::{CACHE_CONTROL, ContentType};
use actix_web::{HttpResponse, web};

macro_rules! embedded {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/graphiql/", $name)).as_slice()
    };
}

/// Starts GraphiQL on `/graphql`, with subscriptions over WebSocket on the same path.
/// The socket authenticates with the Authorization header saved in GraphiQL's headers pane (read
/// when the page loads).
const START: &str = r#"(function () {
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var saved = {};
  try { saved = JSON.parse(localStorage.getItem("graphiql:headers") || "{}") || {}; } catch (e) {}
  var authorization = saved.Authorization || saved.authorization;
  var fetcher = GraphiQL.createFetcher({
    url: "/graphql",
    subscriptionUrl: scheme + location.host + "/graphql",
    wsConnectionParams: authorization ? { authorization: authorization } : {},
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true })
  );
})();
"#;

/// (name, media type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        embedded!("graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        embedded!("graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        embedded!("react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        embedded!("react-dom.production.min.js"),
    ),
    (
        "LICENSES.txt",
        "text/plain; charset=utf-8",
        embedded!("LICENSES.txt"),
    ),
    (
        "start.js",
        "text/javascript; charset=utf-8",
        START.as_bytes(),
    ),
];

/// The GraphiQL page; every asset it names is served by this binary.
pub fn page() -> String {
    if cfg!(graphiql_missing) {
        return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tandem</title>\
                </head><body><p>GraphiQL was not bundled into this build: Node.js and npm were \
                missing when it was compiled. Install them and rebuild, or send GraphQL requests \
                to POST /graphql.</p></body></html>"
            .to_owned();
    }
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
     <title>Tandem · GraphiQL</title>\n\
     <link rel=\"license\" href=\"/graphiql/LICENSES.txt\">\n\
     <link rel=\"stylesheet\" href=\"/graphiql/graphiql.min.css\">\n\
     <style>body { margin: 0; } #graphiql { height: 100vh; }</style>\n</head>\n<body>\n\
     <div id=\"graphiql\">Loading GraphiQL…</div>\n\
     <script src=\"/graphiql/react.production.min.js\"></script>\n\
     <script src=\"/graphiql/react-dom.production.min.js\"></script>\n\
     <script src=\"/graphiql/graphiql.min.js\"></script>\n\
     <script src=\"/graphiql/start.js\"></script>\n</body>\n</html>\n"
        .to_owned()
}

/// `GET /graphiql/{file}`.
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(file, _, _)| *file == name.as_str()) {
        Some((_, media, bytes)) if !bytes.is_empty() => HttpResponse::Ok()
            .insert_header((actix_web::http::header::CONTENT_TYPE, *media))
            // The files change only with the binary.
            .insert_header((CACHE_CONTROL, "public, max-age=86400"))
            .body(*bytes),
        _ => HttpResponse::NotFound()
            .content_type(ContentType::plaintext())
            .body("no such GraphiQL file"),
    }
}
