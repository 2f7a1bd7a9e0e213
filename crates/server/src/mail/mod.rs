//! Outgoing mail: the SMTP settings ([`MailConfig`]), the messages Plinth sends ([`Mail`])
//! and the [`Mailer`] that sends them from a background task.
//!
//! Layout:
//! - this file: the settings (parsed from `PLINTH_SMTP_URL`), the bounded queue and the
//!   task draining it over one SMTP transport;
//! - `templates`: the built-in plain-text and HTML bodies, an operator's overrides, and
//!   placeholder filling.
//!
//! A request only puts a message on the queue (never waiting for SMTP, so an answer's
//! timing says nothing about whether mail went); a full queue drops the message. Failures
//! are logged by kind and counted, never with the body, the address or the token.

mod templates;

pub use templates::TEMPLATE_NAMES;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// How many messages may wait to be sent; past it new ones are dropped (and counted).
const QUEUE: usize = 256;
/// The longest one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    Wrapper,
    /// `tls=required`: STARTTLS, refusing a server without it (port 587 by default).
    Required,
    /// `tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `tls=none`: plain text (loopback relays and tests; refused elsewhere in production).
    None,
}

/// SMTP settings: where to send and as whom.
#[derive(Clone)]
pub struct MailConfig {
    /// The relay's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// User and password, when the relay wants them.
    credentials: Option<(String, String)>,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// A directory of operator templates overriding the built-in ones.
    pub templates_dir: Option<PathBuf>,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| "****"))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl MailConfig {
    /// Reads `smtp://[user[:password]@]host[:port][?tls=required|opportunistic|none]` or
    /// `smtps://…`. Without `tls`, `smtp://` to a loopback host is plain and to any other
    /// host `required`. The error never repeats the URL (it may hold a password).
    pub fn parse(url: &str, from: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut tls_param = None;
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "tls" => tls_param = Some(v.into_owned()),
                other => return Err(format!("has an unknown parameter {other:?} (only tls)")),
            }
        }
        let tls = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtps", None) => SmtpTls::Wrapper,
            ("smtp", Some("required")) => SmtpTls::Required,
            ("smtp", Some("opportunistic")) => SmtpTls::Opportunistic,
            ("smtp", Some("none")) => SmtpTls::None,
            ("smtp", None) if is_loopback(&host) => SmtpTls::None,
            ("smtp", None) => SmtpTls::Required,
            ("smtp", Some(other)) => {
                return Err(format!(
                    "has tls={other:?}; use required, opportunistic or none"
                ));
            }
            ("smtps", Some(_)) => return Err("smtps:// takes no tls parameter".to_owned()),
            (other, _) => {
                return Err(format!("has scheme {other:?}; use smtp:// or smtps://"));
            }
        };
        let port = parsed.port().unwrap_or(match tls {
            SmtpTls::Wrapper => 465,
            SmtpTls::Required | SmtpTls::Opportunistic => 587,
            SmtpTls::None => 25,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "has a user or password that is not UTF-8".to_owned())
        };
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user)?, decode(password.unwrap_or(""))?)),
        };
        let from = from.trim();
        from.parse::<Mailbox>().map_err(|_| {
            "PLINTH_SMTP_FROM is not an address such as \"Plinth <no-reply@example.com>\""
                .to_owned()
        })?;
        Ok(Self {
            host,
            port,
            tls,
            credentials,
            from: from.to_owned(),
            templates_dir: None,
        })
    }

    /// Whether the relay is on this machine (plain SMTP to it crosses no network).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }

    fn transport(
        &self,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT));
        let params = || TlsParameters::new(self.host.clone());
        builder = match self.tls {
            SmtpTls::Wrapper => builder.tls(Tls::Wrapper(params()?)),
            SmtpTls::Required => builder.tls(Tls::Required(params()?)),
            SmtpTls::Opportunistic => builder.tls(Tls::Opportunistic(params()?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Which message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A token proving the address (after sign-up, or asked again).
    VerifyEmail,
    /// A token setting a new password.
    PasswordReset,
    /// A token confirming a new address, sent to it.
    EmailChange,
    /// To the old address: a change to another address was asked for.
    EmailChangeNotice,
    /// To an address someone tried to sign up (or move an account) with, that already has
    /// an account.
    SignupExists,
}

impl MailKind {
    /// The template's file name without its extension, also the label of logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::EmailChangeNotice => "email_change_notice",
            Self::SignupExists => "signup_exists",
        }
    }
}

/// A message to send: never logged (it holds an address and maybe a token).
#[derive(Clone)]
pub struct Mail {
    /// What it is.
    pub kind: MailKind,
    /// The recipient.
    pub to: String,
    /// The token it carries, if any.
    pub token: Option<String>,
    /// How long the token lives, in minutes.
    pub minutes: u64,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What the mailer counted, shown on `/metrics` as `plinth_mail_messages_total`, by
/// `outcome`: `sent` (the relay accepted it), `failed` (it could not be built or sent),
/// `dropped` (the queue was full).
#[derive(Debug, Clone, Default)]
pub struct MailCounters(Family<[(&'static str, &'static str); 1], Counter>);

impl MailCounters {
    fn count(&self, outcome: &'static str) {
        self.0.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// How many messages ended with `outcome`.
    pub fn get(&self, outcome: &'static str) -> u64 {
        self.0.get_or_create(&[("outcome", outcome)]).get()
    }

    /// Registers the counter.
    pub(crate) fn register(&self, registry: &mut Registry) {
        for outcome in ["sent", "failed", "dropped"] {
            drop(self.0.get_or_create(&[("outcome", outcome)]));
        }
        registry.register(
            "plinth_mail_messages",
            "Account mail messages, by outcome",
            self.0.clone(),
        );
    }
}

/// Sends [`Mail`] from a background task; `None` config: mail is off.
#[derive(Debug)]
pub struct Mailer {
    config: Option<Arc<MailConfig>>,
    public_url: Option<String>,
    queue: OnceLock<mpsc::Sender<Mail>>,
    counters: MailCounters,
}

impl Mailer {
    /// A mailer for `config`; links point at `public_url`. The task starts with the first
    /// message.
    pub fn new(config: Option<MailConfig>, public_url: Option<String>) -> Self {
        Self {
            config: config.map(Arc::new),
            public_url,
            queue: OnceLock::new(),
            counters: MailCounters::default(),
        }
    }

    /// Whether SMTP is configured.
    pub fn enabled(&self) -> bool {
        self.config.is_some()
    }

    /// What was counted.
    pub fn counters(&self) -> &MailCounters {
        &self.counters
    }

    /// Queues `mail` without waiting; dropped (and counted) when mail is off or the queue
    /// is full. Must run inside the tokio runtime.
    pub fn send(&self, mail: Mail) {
        let Some(config) = &self.config else {
            return;
        };
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(
                Arc::clone(config),
                self.public_url.clone(),
                rx,
                self.counters.clone(),
            ));
            tx
        });
        if queue.try_send(mail).is_err() {
            self.counters.count("dropped");
            tracing::warn!(target: "plinth::mail", "the mail queue is full; a message was dropped");
        }
    }
}

/// The task: one message at a time over one transport.
async fn run(
    config: Arc<MailConfig>,
    public_url: Option<String>,
    mut rx: mpsc::Receiver<Mail>,
    counters: MailCounters,
) {
    let transport = match config.transport() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(target: "plinth::mail", error = %e, "cannot set up SMTP; mail is not sent");
            while rx.recv().await.is_some() {
                counters.count("failed");
            }
            return;
        }
    };
    while let Some(mail) = rx.recv().await {
        let kind = mail.kind.name();
        let outcome = match build(&config, public_url.as_deref(), &mail).await {
            Ok(message) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| describe(&e)),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                counters.count("sent");
                tracing::debug!(target: "plinth::mail", kind, "mail sent");
            }
            Err(error) => {
                counters.count("failed");
                tracing::warn!(target: "plinth::mail", kind, error = %error, "mail not sent");
            }
        }
    }
}

/// What went wrong with a send, without the relay's reply text (which may quote the
/// recipient): the kind of failure and the SMTP status code.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else if e.is_permanent() {
        "refused permanently by the relay"
    } else if e.is_transient() {
        "refused for now by the relay"
    } else if e.is_client() {
        "a client error"
    } else {
        "cannot reach or talk to the relay"
    };
    match e.status() {
        Some(code) => format!("{kind} (SMTP {code})"),
        None => kind.to_owned(),
    }
}

/// The message: a plain-text and an HTML part from the templates.
async fn build(
    config: &MailConfig,
    public_url: Option<&str>,
    mail: &Mail,
) -> Result<Message, String> {
    let body = templates::render(config.templates_dir.as_deref(), public_url, mail).await;
    let from: Mailbox = config.from.parse().map_err(|_| "bad sender".to_owned())?;
    let to: Mailbox = mail.to.parse().map_err(|_| "bad recipient".to_owned())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(body.subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(text_part(body.text))
                .singlepart(SinglePart::html(body.html)),
        )
        .map_err(|_| "cannot build the message".to_owned())
}

/// The plain-text part: sent as it is (7bit, CRLF lines) when it is plain ASCII with lines
/// of at most 998 bytes, so the `token:` line reads exactly as written; else (an operator's
/// non-ASCII template) in whatever encoding lettre picks.
fn text_part(text: String) -> SinglePart {
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;
    let builder = SinglePart::builder().header(ContentType::TEXT_PLAIN);
    let plain =
        text.is_ascii() && !text.contains(['\0', '\r']) && text.lines().all(|l| l.len() <= 998);
    if plain {
        let crlf = text.lines().collect::<Vec<_>>().join("\r\n") + "\r\n";
        builder.body(Body::dangerous_pre_encoded(
            crlf.into_bytes(),
            ContentTransferEncoding::SevenBit,
        ))
    } else {
        builder.body(Body::new(text))
    }
}
