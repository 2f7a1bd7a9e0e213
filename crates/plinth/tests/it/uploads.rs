//! A 100 MB upload through a real `plinth serve` streams: the server's peak resident memory
//! (`VmHWM` in `/proc/<pid>/status`) grows by far less than the file, which it would pass
//! if the body or the file were ever collected in memory. The file is then downloaded
//! whole and checked byte for byte. Both engines.

use crate::helpers::{Server, TestDir};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

const SIZE: usize = 100 << 20;
/// What the server may add to its peak while it streams the upload and the download.
const ALLOWED_GROWTH_KB: u64 = 40 << 10;
const BOUNDARY: &str = "plinth-upload-boundary";

/// The server's peak resident set, in KiB.
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_streams_through_flat_memory() {
    let dir = TestDir::new();
    dir.write_config(
        "[[models]]\nname = \"archive\"\n\n[[models.fields]]\nname = \"blob\"\ntype = \"file\"\n\
         max_size = 209715200\n",
    );
    let server = Server::start(&dir).await;
    let pid = server.proc.pid();
    let file: Vec<u8> = (0..SIZE)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{{\"name\": \"big\"}}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let before = peak_kb(pid);
    let r = server
        .send(
            server
                .client()
                .post(server.url("/api/v1/archive"))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let record = &r.body["data"];
    let name = record["blob"].as_str().expect("a stored name");
    let id = record["id"].as_str().expect("an id");
    let after_upload = peak_kb(pid);
    let got = server
        .client()
        .get(server.url(&format!("/api/v1/archive/{id}/files/blob/{name}")))
        .send()
        .await
        .expect("the download answers");
    assert_eq!(got.status(), StatusCode::OK);
    let etag = got
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = got.bytes().await.expect("the file");
    assert_eq!(bytes.len(), SIZE);
    assert!(bytes[..] == file[..], "the download is the upload");
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            base16ct::lower::encode_string(&Sha256::digest(&file))
        )
    );
    let after_download = peak_kb(pid);
    // Each phase from the peak the one before left: a phase that held the file would add
    // at least its 100 MiB to it.
    for (what, from, peak) in [
        ("upload", before, after_upload),
        ("download", after_upload, after_download),
    ] {
        assert!(
            peak.saturating_sub(from) < ALLOWED_GROWTH_KB,
            "the server's peak memory grew by {} KiB over the {what} of a {} MiB file",
            peak.saturating_sub(from),
            SIZE >> 20
        );
    }
}
