//! The bodies of Plinth's messages: built in, each part overridable by a file in
//! `smtp.templates_dir` (`verify_email.txt`, `verify_email.html`, …), with `{{link}}`,
//! `{{token}}`, `{{email}}` and `{{minutes}}` filled in (HTML-escaped in the HTML part). A
//! line holding `{{link}}` is left out when no `public_url` is set. The text part always
//! carries the token on a line of its own, `token: <token>` (added if a template lacks it).

use super::{Mail, MailKind};
use std::path::Path;

/// The template names an operator may override (each as `.txt` and `.html`).
pub const TEMPLATE_NAMES: &[&str] = &[
    "verify_email",
    "password_reset",
    "email_change",
    "email_change_notice",
    "signup_exists",
];

/// A rendered message.
pub(super) struct Body {
    pub(super) subject: &'static str,
    pub(super) text: String,
    pub(super) html: String,
}

/// The page a token's link opens, under `public_url`.
fn link_path(kind: MailKind) -> Option<&'static str> {
    match kind {
        MailKind::VerifyEmail => Some("/verify-email"),
        MailKind::PasswordReset => Some("/reset-password"),
        MailKind::EmailChange => Some("/confirm-email-change"),
        MailKind::EmailChangeNotice | MailKind::SignupExists => None,
    }
}

fn builtin(kind: MailKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        MailKind::VerifyEmail => (
            "Verify your email address",
            "Please confirm that {{email}} is your address.\n\nOpen this link:\n{{link}}\n\nor send this token to the app:\ntoken: {{token}}\n\nIt works once, for {{minutes}} minutes. If you did not sign up, ignore this message.\n",
            "<p>Please confirm that {{email}} is your address.</p>\n<p><a href=\"{{link}}\">Verify my address</a></p>\n<p>Token: <code>{{token}}</code> (works once, for {{minutes}} minutes).</p>\n<p>If you did not sign up, ignore this message.</p>\n",
        ),
        MailKind::PasswordReset => (
            "Reset your password",
            "Someone asked to reset the password of the account {{email}}.\n\nTo choose a new password, open this link:\n{{link}}\n\nor send this token to the app:\ntoken: {{token}}\n\nIt works once, for {{minutes}} minutes, and ends every session of the account. If it was not you, ignore this message: your password stays as it is.\n",
            "<p>Someone asked to reset the password of the account {{email}}.</p>\n<p><a href=\"{{link}}\">Choose a new password</a></p>\n<p>Token: <code>{{token}}</code> (works once, for {{minutes}} minutes; every session of the account ends).</p>\n<p>If it was not you, ignore this message: your password stays as it is.</p>\n",
        ),
        MailKind::EmailChange => (
            "Confirm your new email address",
            "Someone asked to move an account to {{email}}.\n\nTo confirm, open this link:\n{{link}}\n\nor send this token to the app:\ntoken: {{token}}\n\nIt works once, for {{minutes}} minutes. If it was not you, ignore this message.\n",
            "<p>Someone asked to move an account to {{email}}.</p>\n<p><a href=\"{{link}}\">Confirm the new address</a></p>\n<p>Token: <code>{{token}}</code> (works once, for {{minutes}} minutes).</p>\n<p>If it was not you, ignore this message.</p>\n",
        ),
        MailKind::EmailChangeNotice => (
            "Your email address is being changed",
            "Someone signed in to the account {{email}} asked to move it to another address. The change happens once the new address confirms it.\n\nIf it was not you, change your password now.\n",
            "<p>Someone signed in to the account {{email}} asked to move it to another address. The change happens once the new address confirms it.</p>\n<p>If it was not you, change your password now.</p>\n",
        ),
        MailKind::SignupExists => (
            "Someone tried to use your email address",
            "Someone tried to sign up (or move an account) with your address, {{email}}, which already has an account.\n\nIf it was you, log in, or reset your password if you forgot it. If not, ignore this message: nothing changed.\n",
            "<p>Someone tried to sign up (or move an account) with your address, {{email}}, which already has an account.</p>\n<p>If it was you, log in, or reset your password if you forgot it. If not, ignore this message: nothing changed.</p>\n",
        ),
    }
}

/// An operator's template, if the directory holds one.
async fn operator(dir: Option<&Path>, name: &str, ext: &str) -> Option<String> {
    let path = dir?.join(format!("{name}.{ext}"));
    tokio::fs::read_to_string(path).await.ok()
}

pub(super) async fn render(dir: Option<&Path>, public_url: Option<&str>, mail: &Mail) -> Body {
    let (subject, text, html) = builtin(mail.kind);
    let name = mail.kind.name();
    let text = operator(dir, name, "txt")
        .await
        .unwrap_or_else(|| text.to_owned());
    let html = operator(dir, name, "html")
        .await
        .unwrap_or_else(|| html.to_owned());
    let token = mail.token.as_deref().unwrap_or("");
    let link = match (public_url, link_path(mail.kind), &mail.token) {
        (Some(base), Some(path), Some(t)) => format!("{base}{path}?token={t}"),
        _ => String::new(),
    };
    let values = Values {
        link: &link,
        token,
        email: &mail.to,
        minutes: &mail.minutes.to_string(),
    };
    let mut text = fill(&text, &values, |s| s.to_owned());
    if !token.is_empty()
        && !text
            .lines()
            .any(|l| l.trim_end() == format!("token: {token}"))
    {
        text.push_str(&format!("\ntoken: {token}\n"));
    }
    Body {
        subject,
        text,
        html: fill(&html, &values, escape),
    }
}

struct Values<'a> {
    link: &'a str,
    token: &'a str,
    email: &'a str,
    minutes: &'a str,
}

/// Fills the placeholders with `encode`d values, leaving out the lines that hold `{{link}}`
/// when there is none.
fn fill(template: &str, v: &Values<'_>, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    for line in template.split_inclusive('\n') {
        if v.link.is_empty() && line.contains("{{link}}") {
            continue;
        }
        out.push_str(
            &line
                .replace("{{link}}", &encode(v.link))
                .replace("{{token}}", &encode(v.token))
                .replace("{{email}}", &encode(v.email))
                .replace("{{minutes}}", &encode(v.minutes)),
        );
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(kind: MailKind) -> Mail {
        Mail {
            kind,
            to: "a&b@example.com".to_owned(),
            token: Some("tok123".to_owned()),
            minutes: 30,
        }
    }

    #[tokio::test]
    async fn the_token_line_and_the_link() {
        let b = render(
            None,
            Some("https://x.example"),
            &mail(MailKind::PasswordReset),
        )
        .await;
        assert!(b.text.lines().any(|l| l == "token: tok123"), "{}", b.text);
        assert!(
            b.text
                .contains("https://x.example/reset-password?token=tok123")
        );
        assert!(b.html.contains("a&amp;b@example.com"), "{}", b.html);
        let b = render(None, None, &mail(MailKind::VerifyEmail)).await;
        assert!(
            !b.text.contains("{{link}}") && !b.text.contains("?token="),
            "{}",
            b.text
        );
        assert!(b.text.lines().any(|l| l == "token: tok123"));
    }

    #[tokio::test]
    async fn an_operator_template_overrides_and_keeps_the_token_line() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("verify_email.txt"),
            "Hi {{email}} <{{minutes}}>\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("verify_email.html"), "<b>{{email}}</b>").expect("write");
        let b = render(Some(dir.path()), None, &mail(MailKind::VerifyEmail)).await;
        assert!(b.text.starts_with("Hi a&b@example.com <30>"), "{}", b.text);
        assert!(b.text.lines().any(|l| l == "token: tok123"), "{}", b.text);
        assert_eq!(b.html, "<b>a&amp;b@example.com</b>");
    }
}
