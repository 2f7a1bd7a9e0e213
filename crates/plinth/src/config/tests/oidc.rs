//! `[[auth.oidc]]`: providers read from the file, their secrets from the variable each names,
//! every mistake refused with its place, and the secret never shown.

use super::*;

const SECRET: &str = "the-client-secret-value-0123456789";

fn providers(extra: &str) -> String {
    format!(
        "public_url = \"https://api.example.com\"\n[auth]\nsignup = \"open\"\n\n[[auth.oidc]]\nname = \"google\"\nissuer = \"https://accounts.google.com\"\nclient_id = \"abc.apps\"\nclient_secret_env = \"GOOGLE_SECRET\"\n{extra}"
    )
}

#[test]
fn providers_load_with_their_secret_from_the_environment_and_default_scopes() {
    let f = file(&providers(
        "\n[[auth.oidc]]\nname = \"corp-sso_2\"\nissuer = \"https://sso.corp.example/realms/x\"\nclient_id = \"plinth\"\nclient_secret_env = \"CORP_SECRET\"\nscopes = \"openid email\"\n",
    ));
    let c = load_ok(
        &args(&f),
        None,
        &[("GOOGLE_SECRET", SECRET), ("CORP_SECRET", "other-secret")],
    );
    let auth = c.auth_config().expect("auth config");
    assert_eq!(auth.oidc.len(), 2);
    assert_eq!(auth.oidc[0].name, "google");
    assert_eq!(auth.oidc[0].client_secret, SECRET);
    assert_eq!(auth.oidc[0].scopes, "openid email profile");
    assert_eq!(auth.oidc[1].scopes, "openid email");
    let shown = c.render();
    assert!(
        shown.contains("[[auth.oidc]]") && shown.contains("GOOGLE_SECRET"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET), "the secret is shown: {shown}");
    assert!(!format!("{c:?}").contains(SECRET), "the secret is in Debug");
    // Valid TOML, the providers in it.
    let table: toml::Table = toml::from_str(&shown).expect("plinth config prints TOML");
    let oidc = table["auth"]["oidc"].as_array().expect("[[auth.oidc]]");
    assert_eq!(oidc.len(), 2);
}

#[test]
fn no_providers_by_default() {
    let c = load_ok(&args(&file("")), None, &[]);
    assert!(c.auth_config().expect("auth").oidc.is_empty());
}

#[test]
fn mistakes_in_providers_are_refused_with_a_clear_message() {
    let env = [("GOOGLE_SECRET", SECRET)];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        (&providers(""), &[], "GOOGLE_SECRET"),
        (&providers("color = \"blue\"\n"), &env, "unknown field"),
        (
            &providers(
                "\n[[auth.oidc]]\nname = \"google\"\nissuer = \"https://b.example\"\nclient_id = \"x\"\nclient_secret_env = \"GOOGLE_SECRET\"\n",
            ),
            &env,
            "declared twice",
        ),
        (
            &providers("").replace("name = \"google\"", "name = \"Google!\""),
            &env,
            "name must be",
        ),
        (
            &providers("").replace("https://accounts.google.com", "accounts.google.com"),
            &env,
            "issuer must be",
        ),
        (
            &providers("").replace("public_url = \"https://api.example.com\"\n", ""),
            &env,
            "needs public_url",
        ),
        (&providers("scopes = \"email\"\n"), &env, "openid"),
    ];
    for (text, env, expected) in cases {
        let err = load_err(&args(&file(text)), env);
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(!err.contains(SECRET), "the secret is in a refusal: {err}");
    }
}

#[test]
fn production_needs_https_issuers_and_development_allows_http() {
    let http = providers("").replace("https://accounts.google.com", "http://127.0.0.1:9999");
    let c = load_ok(&args(&file(&http)), None, &[("GOOGLE_SECRET", SECRET)]);
    assert_eq!(c.oidc[0].provider.issuer, "http://127.0.0.1:9999");
    let strong = "q1W8m0pX3r9ZkT2vL7cN5bY4hJ6gF0dS8aE2uI1oP9lK3jH";
    let keys = "index=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nk1=ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let err = load_err(
        &args(&file(&format!("env = \"production\"\n{http}"))),
        &[
            ("GOOGLE_SECRET", SECRET),
            (env::JWT_SECRET, strong),
            (env::ENCRYPTION_KEYS, keys),
        ],
    );
    assert!(err.contains("https in production"), "{err}");
}
