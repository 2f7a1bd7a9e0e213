//! A Server-Sent Events reader small enough for a load generator: bytes in, whole events
//! out, as the HTML standard's event-stream parsing describes (`event:`, `data:`, `id:`
//! fields; `:` comments; a blank line dispatches; `\n`, `\r\n` or `\r` end a line).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, `message` when the event named none.
    pub(crate) event: String,
    /// The `data:` lines, joined by `\n`.
    pub(crate) data: String,
}

/// Turns chunks of a stream into events; a chunk may end anywhere, even inside a line.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The unfinished line carried over to the next chunk.
    line: Vec<u8>,
    /// A `\r` ended the last chunk: a `\n` opening the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    /// Whether a `data:` field was seen since the last dispatch.
    has_data: bool,
}

impl SseParser {
    /// Feeds `bytes`, appending each event they complete to `out`.
    pub(crate) fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                _ => self.line.push(b),
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                let event = std::mem::take(&mut self.event);
                out.push(SseEvent {
                    event: if event.is_empty() {
                        "message".to_owned()
                    } else {
                        event
                    },
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return; // a comment, such as the heartbeat
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter to a reconnecting client; this one never reconnects.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&str]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes(), &mut out);
        }
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_dispatch_on_a_blank_line_whatever_the_chunking() {
        let text = "id: 7\nevent: created\ndata: {\"seq\":7}\n\n: heartbeat\n\nevent: ready\nid: 7\ndata: {\"position\":7}\n\n";
        let whole = parse(&[text]);
        assert_eq!(
            whole,
            [
                ev("created", "{\"seq\":7}"),
                ev("ready", "{\"position\":7}")
            ]
        );
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let one_by_one: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(parse(&one_by_one), whole);
    }

    #[test]
    fn line_ends_data_lines_and_defaults_follow_the_standard() {
        assert_eq!(
            parse(&["data:a\r\ndata: b\r", "\n\r\n", "data\n\nevent: x\n\n"]),
            [ev("message", "a\nb"), ev("message", "")]
        );
        // An event with no data line is not dispatched, and its name does not leak on.
        assert_eq!(parse(&["event: x\n\ndata: y\n\n"]), [ev("message", "y")]);
        // Nothing is dispatched before its blank line.
        assert_eq!(parse(&["event: end\ndata: {}\n"]), []);
    }
}
