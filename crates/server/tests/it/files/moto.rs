//! A moto server (an S3-compatible service from PyPI) on a random loopback port, with one
//! bucket, for the file tests on S3 storage. `PLINTH_TEST_MOTO` names its `moto_server`
//! (`.ci/run` installs it into `.ci/venv`); without it the S3 cases print why and pass,
//! unless `PLINTH_REQUIRE_S3=1`, when they fail.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Moto {
    child: Child,
    port: u16,
    pub(crate) bucket: String,
}

impl Moto {
    /// A running server with an empty bucket, or `None` when moto is not available.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        let Ok(bin) = std::env::var("PLINTH_TEST_MOTO") else {
            assert!(
                std::env::var("PLINTH_REQUIRE_S3").as_deref() != Ok("1"),
                "{test}: PLINTH_REQUIRE_S3=1 but PLINTH_TEST_MOTO names no moto_server"
            );
            eprintln!("skipping {test}: set PLINTH_TEST_MOTO to a moto_server to run it");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{test}: cannot start {bin}: {e}"));
        let moto = Self {
            child,
            port,
            bucket: format!("plinth-{}", std::process::id()),
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // moto takes unsigned requests: a PUT on the bucket's path makes it.
            let made = client
                .put(format!("{}/{}", moto.endpoint(), moto.bucket))
                .send()
                .await;
            if made.is_ok_and(|r| r.status().is_success()) {
                return Some(moto);
            }
            assert!(Instant::now() < deadline, "{test}: moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many objects the bucket holds.
    pub(crate) async fn count_objects(&self) -> usize {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let text = client
            .get(format!("{}/{}?list-type=2", self.endpoint(), self.bucket))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("a listing");
        text.matches("<Key>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
