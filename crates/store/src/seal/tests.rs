use super::*;
use std::time::Instant;

fn ring() -> Keyring {
    Keyring::parse(&Keyring::generate_text().expect("generate")).expect("parse")
}

fn id() -> Uuid {
    Uuid::now_v7()
}

#[test]
fn a_sealed_value_opens_only_with_its_table_column_and_row() {
    let ring = ring();
    let row = id();
    let sealed = ring
        .seal(&aad("t", "c", &row), "ada@example.com")
        .expect("seal");
    assert!(sealed.starts_with("v1:k1:"), "{sealed}");
    assert!(!sealed.contains("ada"), "{sealed}");
    assert_eq!(
        ring.open(&aad("t", "c", &row), &sealed).expect("open"),
        "ada@example.com"
    );
    for other in [
        aad("t", "d", &row),
        aad("u", "c", &row),
        aad("t", "c", &id()),
    ] {
        let err = ring.open(&other, &sealed).expect_err("moved value");
        assert!(err.to_string().contains("moved from another row"), "{err}");
    }
}

#[test]
fn every_seal_takes_a_fresh_nonce() {
    let ring = ring();
    let row = id();
    let a = ring.seal(&aad("t", "c", &row), "same").expect("seal");
    let b = ring.seal(&aad("t", "c", &row), "same").expect("seal");
    assert_ne!(a, b);
}

#[test]
fn a_tampered_or_foreign_value_is_an_error_not_garbage() {
    let ring = ring();
    let row = id();
    let aad = aad("t", "c", &row);
    let sealed = ring.seal(&aad, "secret").expect("seal");
    let mut bytes = sealed.into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("utf8");
    assert!(ring.open(&aad, &tampered).is_err());
    assert!(ring.open(&aad, "plain text").is_err());
    assert!(ring.open(&aad, "v1:k9:AAAA").is_err());
    let stranger = self::ring().seal(&aad, "secret").expect("seal");
    assert!(ring.open(&aad, &stranger).is_err());
}

#[test]
fn the_last_key_listed_seals_and_every_key_opens() {
    let text = Keyring::generate_text().expect("generate");
    let old = Keyring::parse(&text).expect("parse");
    let row = id();
    let aad = aad("t", "c", &row);
    let sealed_old = old.seal(&aad, "x").expect("seal");
    let (new_id, text) = Keyring::add_key(&text).expect("add");
    assert_eq!(new_id, "k2");
    let new = Keyring::parse(&text).expect("parse");
    assert_eq!(new.active(), "k2");
    assert_eq!(new.open(&aad, &sealed_old).expect("open old"), "x");
    assert!(new.seal(&aad, "x").expect("seal").starts_with("v1:k2:"));
    assert_eq!(old.blind("t.c", "x"), new.blind("t.c", "x"));
    let retired = Keyring::remove_key(&text, "k1").expect("remove");
    let retired = Keyring::parse(&retired).expect("parse");
    assert_eq!(retired.ids().collect::<Vec<_>>(), ["k2"]);
    assert!(retired.open(&aad, &sealed_old).is_err());
}

#[test]
fn the_active_and_index_keys_cannot_be_removed() {
    let text = Keyring::generate_text().expect("generate");
    assert!(Keyring::remove_key(&text, "k1").is_err());
    assert!(Keyring::remove_key(&text, "index").is_err());
    assert!(Keyring::remove_key(&text, "k7").is_err());
}

#[test]
fn blind_indexes_are_keyed_and_per_column() {
    let ring = ring();
    let a = ring.blind("t.c", "ada");
    assert_eq!(a, ring.blind("t.c", "ada"));
    assert_ne!(a, ring.blind("t.d", "ada"));
    assert_ne!(a, ring.blind("t.c", "adb"));
    assert_ne!(a, self::ring().blind("t.c", "ada"));
    assert_eq!(a.len(), 43);
}

#[test]
fn bad_key_text_is_refused_without_echoing_keys() {
    let good = STANDARD.encode([7u8; 32]);
    let short = STANDARD.encode([7u8; 31]);
    for (text, why) in [
        (format!("k1={good}"), "index"),
        (format!("index={good}"), "sealing key"),
        (format!("index={good}\nk1={short}"), "32 bytes"),
        (format!("index={good}\nk1=%%%"), "base64"),
        (format!("index={good}\nK1={good}"), "lowercase"),
        (format!("index={good}\nk1={good}\nk1={good}"), "twice"),
        (format!("index={good}\nk1"), "id=<base64"),
    ] {
        let err = Keyring::parse(&text).expect_err(&text).to_string();
        assert!(err.contains(why), "{text}: {err}");
        assert!(!err.contains(&good), "{err}");
    }
    let env_style = format!("index={good},k1={good}, k2={good}");
    assert_eq!(Keyring::parse(&env_style).expect("parse").active(), "k2");
    let debug = format!("{:?}", Keyring::parse(&env_style).expect("parse"));
    assert!(!debug.contains(&good), "{debug}");
}

#[test]
fn missing_keys_refuse_clearly() {
    let keys = Keys::missing();
    let err = keys.seal("t", "c", &id(), "x").expect_err("no keys");
    assert!(err.to_string().contains("no encryption keys"), "{err}");
}

#[test]
fn a_key_file_is_reread_when_a_value_names_a_new_key() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys");
    let text = Keyring::generate_text().expect("generate");
    std::fs::write(&path, &text).expect("write");
    let keys = Keys::from_file(&path).expect("keys");
    let (_, text) = Keyring::add_key(&text).expect("add");
    std::fs::write(&path, &text).expect("write");
    let row = id();
    let sealed = Keyring::parse(&text)
        .expect("parse")
        .seal(&aad("t", "c", &row), "x")
        .expect("seal");
    std::thread::sleep(RECHECK);
    assert_eq!(keys.open("t", "c", &row, &sealed).expect("open"), "x");
    assert_eq!(keys.ring().expect("ring").active(), "k2");
}

/// No 20-character slice of `key` appears in `text`.
fn echoes_none_of(text: &str, key: &str) -> bool {
    key.as_bytes()
        .windows(20)
        .all(|w| !text.contains(std::str::from_utf8(w).unwrap_or("")))
}

#[test]
fn a_malformed_entry_is_named_by_its_position_not_its_text() {
    let key = STANDARD.encode([0x5au8; 32]);
    let url = URL_SAFE_NO_PAD.encode([0xa5u8; 32]);
    for (text, entry) in [
        (format!("index={key}\n{key}"), "entry 2"),
        (format!("index={key}\nk1={key}\n{url}"), "entry 3"),
        (format!("index={key},{key}"), "entry 2"),
        (format!("{key}=\nk1={key}"), "entry 1"),
        (format!("index={key}\nk1={key}x"), "entry 2"),
    ] {
        let err = Keyring::parse(&text).expect_err(&text).to_string();
        assert!(err.contains(entry), "{err}");
        assert!(echoes_none_of(&err, &key), "{err}");
        assert!(echoes_none_of(&err, &url), "{err}");
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("index={key}\n{key}\n")).expect("write");
    let err = Keys::from_file(&path).expect_err("bare key").to_string();
    assert!(err.contains("entry 2"), "{err}");
    assert!(echoes_none_of(&err, &key), "{err}");
}

#[test]
fn a_stored_value_naming_an_odd_key_id_is_not_echoed() {
    let ring = ring();
    let aad = aad("t", "c", &id());
    let err = ring
        .open(&aad, "v1:ada.lovelace@example.com:AAAA")
        .expect_err("not sealed")
        .to_string();
    assert!(!err.contains("lovelace"), "{err}");
}

#[test]
fn a_value_under_a_new_key_opens_at_once_after_a_rotation() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys");
    let text = Keyring::generate_text().expect("generate");
    std::fs::write(&path, &text).expect("write");
    let keys = Keys::from_file(&path).expect("keys");
    let row = id();
    // `plinth keys rotate` on another instance, just now: no wait for RECHECK.
    let (_, text) = Keyring::add_key(&text).expect("add");
    std::fs::write(&path, &text).expect("write");
    let sealed = Keyring::parse(&text)
        .expect("parse")
        .seal(&aad("t", "c", &row), "x")
        .expect("seal");
    let first = Instant::now();
    assert_eq!(keys.open("t", "c", &row, &sealed).expect("open"), "x");
    // Forced reloads are still bounded: a second new key right away waits FORCED_RELOAD.
    let (_, text) = Keyring::add_key(&text).expect("add");
    std::fs::write(&path, &text).expect("write");
    let sealed = Keyring::parse(&text)
        .expect("parse")
        .seal(&aad("t", "c", &row), "y")
        .expect("seal");
    let early = keys.open("t", "c", &row, &sealed);
    if first.elapsed() < FORCED_RELOAD {
        assert!(early.is_err(), "re-read within {FORCED_RELOAD:?}");
    }
    std::thread::sleep(FORCED_RELOAD);
    assert_eq!(keys.open("t", "c", &row, &sealed).expect("open"), "y");
    assert_eq!(keys.ring().expect("ring").active(), "k3");
}

#[test]
fn only_a_sealed_value_in_form_is_taken_for_one() {
    let sealed = ring().seal(&aad("t", "c", &id()), "x").expect("seal");
    assert!(is_sealed(&sealed));
    for plain in [
        "ada@example.com",
        "v1:k1:ada@example.com",
        "V1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1:k1:AAAA",
        "v1:K1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1::AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(!is_sealed(plain), "{plain}");
    }
}
