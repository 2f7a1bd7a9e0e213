//! `plinth health`: one GET of a probe over plain HTTP/1.1, for container health checks
//! where no curl is installed. It reads no configuration and opens no database.

use crate::cli::HealthArgs;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The most of the answer read: the status line and a probe's small body.
const MAX_ANSWER: u64 = 64 * 1024;

/// GETs `args.url`; succeeds when the answer's status is 200.
pub(crate) fn run(args: &HealthArgs) -> anyhow::Result<()> {
    let (authority, path) = split_url(&args.url)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, left(deadline)?)
        .with_context(|| format!("cannot connect to {authority}"))?;
    tcp.set_write_timeout(Some(left(deadline)?))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: plinth-health\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .with_context(|| format!("cannot send the request to {authority}"))?;
    tcp.set_read_timeout(Some(left(deadline)?))?;
    let mut answer = Vec::new();
    tcp.take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .with_context(|| format!("no answer from {} in time", args.url))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .with_context(|| format!("{} did not answer HTTP", args.url))?;
    if status != "200" {
        bail!("{} answered {status}", args.url);
    }
    println!("{} answered 200", args.url);
    Ok(())
}

/// `http://host:port/path` → (`host:port`, `/path`); the port defaults to 80.
fn split_url(url: &str) -> anyhow::Result<(String, &str)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url must start with http:// (plinth health speaks plain HTTP only): {url}");
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
    if authority.is_empty() || path.contains(char::is_whitespace) {
        bail!("--url is not a URL like http://127.0.0.1:8080/healthz: {url}");
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && !port.contains(']'));
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path))
}

/// The time left before `deadline`, refusing when none is.
fn left(deadline: Instant) -> anyhow::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => bail!("timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        let split = |u| split_url(u).map_err(|e| e.to_string());
        assert_eq!(
            split("http://127.0.0.1:8080/readyz"),
            Ok(("127.0.0.1:8080".to_owned(), "/readyz"))
        );
        assert_eq!(split("http://plinth"), Ok(("plinth:80".to_owned(), "/")));
        assert_eq!(
            split("http://[::1]:9/healthz"),
            Ok(("[::1]:9".to_owned(), "/healthz"))
        );
        assert_eq!(split("http://[::1]/x"), Ok(("[::1]:80".to_owned(), "/x")));
        assert!(split("https://127.0.0.1:8443/healthz").is_err());
        assert!(split("http:///healthz").is_err());
        assert!(split("http://h/a b").is_err());
    }
}
