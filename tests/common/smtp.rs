//! A real SMTP server for the tests: it listens on a port, speaks enough of RFC 5321 for lettre
//! (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps what it accepts, and can be told to answer
//! 451 (try later) or to refuse recipients with 550.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub raw: String,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.raw.as_bytes())
            .expect("a parsable message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    /// A header's raw value, trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed()
            .header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

#[derive(Default)]
struct Behaviour {
    received: Vec<Received>,
    /// Answer MAIL FROM with 451 this many more times.
    temporary_failures: usize,
    /// Recipients refused with 550.
    refused: HashSet<String>,
    /// Answer the end of DATA with a content rejection (550 5.7.1) this many more times.
    content_rejections: usize,
    /// Accept connections and never say a word.
    silent: bool,
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<Behaviour>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let mut server = Self {
            port,
            state: Arc::default(),
            task: None,
        };
        server.task = Some(tokio::spawn(serve(listener, server.state.clone())));
        server
    }

    /// A port nothing listens on yet; `listen` starts the server there later.
    pub async fn reserved() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Self {
            port,
            state: Arc::default(),
            task: None,
        }
    }

    pub async fn listen(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the reserved port is free again");
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn fail_temporarily(&self, times: usize) {
        self.state.lock().unwrap().temporary_failures = times;
    }

    /// Rejects the next `times` messages after DATA, as a spam filter does (550 5.7.1).
    pub fn reject_content(&self, times: usize) {
        self.state.lock().unwrap().content_rejections = times;
    }

    /// Accepts connections from now on but never answers, as a hung server does.
    pub fn go_silent(&self, silent: bool) {
        self.state.lock().unwrap().silent = silent;
    }

    pub fn refuse_recipient(&self, address: &str) {
        self.state
            .lock()
            .unwrap()
            .refused
            .insert(address.to_lowercase());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<Behaviour>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(session(stream, state.clone()));
    }
}

fn address_of(argument: &str) -> String {
    argument
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(argument)
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

async fn session(stream: TcpStream, state: Arc<Mutex<Behaviour>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let reply = |text: &str| format!("{text}\r\n");
    if state.lock().unwrap().silent {
        // Hold the connection open without a greeting until the client gives up.
        let mut sink = String::new();
        let _ = lines.read_line(&mut sink).await;
        return;
    }
    if write
        .write_all(reply("220 tandem-test ESMTP").as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => "250-tandem-test\r\n250 8BITMIME".to_owned(),
            "HELO" | "NOOP" => "250 OK".to_owned(),
            "RSET" => {
                from.clear();
                to.clear();
                "250 OK".to_owned()
            }
            "MAIL" => {
                let mut behaviour = state.lock().unwrap();
                if behaviour.temporary_failures > 0 {
                    behaviour.temporary_failures -= 1;
                    "451 4.3.0 Try again later".to_owned()
                } else {
                    from = address_of(&command);
                    "250 OK".to_owned()
                }
            }
            "RCPT" => {
                let address = address_of(&command);
                if state.lock().unwrap().refused.contains(&address) {
                    "550 5.1.1 No such user".to_owned()
                } else {
                    to.push(address);
                    "250 OK".to_owned()
                }
            }
            "DATA" => {
                if write
                    .write_all(reply("354 End with <CRLF>.<CRLF>").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let mut raw = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    raw.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mut behaviour = state.lock().unwrap();
                if behaviour.content_rejections > 0 {
                    behaviour.content_rejections -= 1;
                    from.clear();
                    to.clear();
                    "550 5.7.1 Message rejected as spam".to_owned()
                } else {
                    behaviour.received.push(Received {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        raw,
                    });
                    "250 OK queued".to_owned()
                }
            }
            "QUIT" => {
                let _ = write.write_all(reply("221 Bye").as_bytes()).await;
                return;
            }
            _ => "502 Command not implemented".to_owned(),
        };
        if write.write_all(reply(&answer).as_bytes()).await.is_err() {
            return;
        }
    }
}
