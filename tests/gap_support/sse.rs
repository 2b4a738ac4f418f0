//! The SSE transport of the gap checker: `curl -N`, the client the README shows, reading
//! `GET /sse/subscribe/...` with `-i` so the status and headers come first. A resume sends
//! `Last-Event-ID: <height>`, as an `EventSource` does when it reconnects. Killing the client
//! kills curl (its socket closes without a goodbye, as SSE has none).

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::target::from_ws;
use super::transcript::ServerError;
use crate::support::tools::CURL;

/// What the stream delivered next.
pub enum SseEvent {
    Update(i64, Json),
    /// The `error` event that ends a stream: its `code` and `error`.
    Ended(ServerError),
    /// The connection ended, or the server broke the format; says how.
    Closed(String),
}

/// One SSE stream read through curl.
pub struct SseStream {
    _curl: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The fields of the event being read (kept across cancelled reads).
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

impl SseStream {
    /// Opens `path` on `api`, resuming after `last_event_id` if given; the refusal (status
    /// and the JSON body's `error`) if the server answers anything but 200.
    pub async fn open(
        api: std::net::SocketAddr,
        path: &str,
        last_event_id: Option<i64>,
    ) -> Result<SseStream, ServerError> {
        let mut cmd = Command::new(CURL.require());
        cmd.args(["-sS", "-N", "-i", "--http1.1"]);
        if let Some(h) = last_event_id {
            cmd.args(["-H", &format!("Last-Event-ID: {h}")]);
        }
        cmd.arg(format!("http://{api}{path}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut curl = cmd.spawn().expect("run curl");
        let mut out = BufReader::new(curl.stdout.take().expect("curl stdout"));
        let mut status_line = String::new();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            let n = out.read_line(&mut line).await.map_err(|e| ServerError {
                code: "connect".into(),
                message: e.to_string(),
            })?;
            if n == 0 {
                return Err(ServerError {
                    code: "connect".into(),
                    message: format!("curl ended before the headers: {status_line:?} {headers:?}"),
                });
            }
            let line = line.trim_end().to_string();
            if status_line.is_empty() {
                status_line = line;
            } else if line.is_empty() {
                break;
            } else {
                headers.push(line);
            }
        }
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            let mut body = String::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(10), out.read_to_string(&mut body)).await;
            let message = serde_json::from_str::<Json>(&body)
                .ok()
                .and_then(|j| j["error"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(ServerError {
                code: format!("HTTP {status}"),
                message,
            });
        }
        let event_stream = headers.iter().any(|h| {
            h.to_ascii_lowercase()
                .starts_with("content-type: text/event-stream")
        });
        if !event_stream {
            return Err(ServerError {
                code: "content-type".into(),
                message: format!("200 without text/event-stream: {headers:?}"),
            });
        }
        Ok(SseStream {
            _curl: curl,
            lines: out.lines(),
            id: None,
            event: None,
            data: None,
        })
    }

    /// The next event (comments are skipped). Cancel-safe: a half-read event is kept.
    pub async fn next(&mut self) -> SseEvent {
        loop {
            let line = match self.lines.next_line().await {
                Ok(Some(l)) => l,
                Ok(None) => return SseEvent::Closed("the SSE stream ended".into()),
                Err(e) => return SseEvent::Closed(format!("reading the SSE stream: {e}")),
            };
            if line.is_empty() {
                let Some(data) = self.data.take() else {
                    continue; // a comment-only block (keepalive)
                };
                return finish(self.id.take(), self.event.take(), data);
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "id" => self.id = Some(value),
                "event" => self.event = Some(value),
                "data" => self.data = Some(value),
                "retry" => {}
                other => return SseEvent::Closed(format!("unknown SSE field {other:?}: {line}")),
            }
        }
    }
}

fn finish(id: Option<String>, event: Option<String>, data: String) -> SseEvent {
    let Ok(json) = serde_json::from_str::<Json>(&data) else {
        return SseEvent::Closed(format!("event data is not JSON: {data}"));
    };
    match event.as_deref() {
        Some("update") => match from_ws(json) {
            Ok((height, value)) => {
                if id.as_deref() != Some(height.to_string().as_str()) {
                    return SseEvent::Closed(format!(
                        "event id {id:?} is not the update's height {height}"
                    ));
                }
                SseEvent::Update(height, value)
            }
            Err(e) => SseEvent::Closed(format!("bad update {data}: {e}")),
        },
        Some("error") => SseEvent::Ended(ServerError {
            code: json["code"]
                .as_u64()
                .map_or_else(|| json["code"].to_string(), |c| c.to_string()),
            message: json["error"].as_str().unwrap_or_default().to_owned(),
        }),
        other => SseEvent::Closed(format!("unexpected event {other:?}: {data}")),
    }
}
