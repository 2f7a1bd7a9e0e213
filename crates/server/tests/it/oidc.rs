//! Signing in with OpenID Connect, end to end over real HTTP against the test provider
//! (`plinth_testkit::oidc`): the test follows Plinth's 302 to the provider, the provider's
//! 302 back to Plinth's callback with the browser cookie, and gets the token pair. Then
//! every refusal: forged, replayed and unbound state, ID token flaws, the provider's own
//! refusal, an unverified email, sign-up off, and a PKCE verifier that does not match.
//!
//! Plinth's `public_url` is `http://plinth.test` (the server's port is known only once it
//! runs); the test maps that origin to the server's real address when it follows the
//! provider's redirect, as a browser's DNS would.

use crate::helpers::{PASSWORD, Resp, TestApp, Tokens, assert_error, make_user, test_auth_config};
use plinth_core::Role;
use plinth_server::ServerConfig;
use plinth_server::auth::Signup;
use plinth_server::auth::oidc::OidcProvider;
use plinth_testkit::oidc::{NextLogin, TestProvider};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;

const PUBLIC: &str = "http://plinth.test";
const CLIENT_ID: &str = "plinth-client";
const CLIENT_SECRET: &str = "test-client-secret-not-in-answers";

pub(crate) struct Flow {
    pub(crate) app: TestApp,
    pub(crate) provider: TestProvider,
    /// A browser that does not follow redirects, so each hop is seen.
    browser: reqwest::Client,
}

/// A started sign-in: where Plinth sent the browser, and the cookie it set.
struct Started {
    location: String,
    cookie: String,
}

pub(crate) async fn flow(signup: Signup) -> Flow {
    flow_at(signup, PUBLIC).await
}

async fn flow_at(signup: Signup, public: &str) -> Flow {
    let provider = TestProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    provider.register_redirect_uri(&format!("{public}/api/v1/auth/oidc/test/callback"));
    let mut auth = test_auth_config();
    auth.public_url = Some(public.to_owned());
    auth.signup = signup;
    auth.oidc = vec![OidcProvider {
        name: "test".to_owned(),
        issuer: provider.issuer().to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        scopes: "openid email profile".to_owned(),
    }];
    let app = TestApp::spawn_full(Vec::new(), ServerConfig::default(), auth).await;
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("a client");
    Flow {
        app,
        provider,
        browser,
    }
}

impl Flow {
    async fn get(&self, url: &str, cookie: Option<&str>) -> Resp {
        let mut req = self.browser.get(url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = self.app.send(req).await;
        let text = String::from_utf8_lossy(&r.raw);
        assert!(
            !text.contains(CLIENT_SECRET),
            "the client secret leaked: {text}"
        );
        r
    }

    async fn start(&self) -> Started {
        let r = self
            .get(&self.app.url("/api/v1/auth/oidc/test/start"), None)
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{:?}", r.body);
        let location = r.header("location").expect("a Location").to_owned();
        assert!(
            location.starts_with(&format!("{}/authorize?", self.provider.issuer())),
            "{location}"
        );
        for part in [
            "response_type=code",
            "client_id=plinth-client",
            "code_challenge_method=S256",
            "code_challenge=",
            "nonce=",
            "state=",
            "scope=openid+email+profile",
        ] {
            assert!(location.contains(part), "{part} missing: {location}");
        }
        let set = r.header("set-cookie").expect("a cookie").to_owned();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/api/v1/auth/oidc/"] {
            assert!(set.contains(attr), "{attr}: {set}");
        }
        assert!(!set.contains("Secure"), "plain http public_url: {set}");
        let cookie = set.split(';').next().expect("name=value").to_owned();
        Started { location, cookie }
    }

    /// The provider consents; the callback URL it sends the browser to, on the server.
    async fn authorize(&self, started: &Started) -> String {
        let r = self.get(&started.location, None).await;
        assert_eq!(
            r.status,
            StatusCode::FOUND,
            "the provider refused: {:?}",
            r.raw
        );
        let back = r.header("location").expect("a Location");
        let path = back.strip_prefix(PUBLIC).expect("back to public_url");
        assert!(
            path.starts_with("/api/v1/auth/oidc/test/callback?"),
            "{back}"
        );
        self.app.url(path)
    }

    /// A whole sign-in; the callback's answer.
    pub(crate) async fn sign_in(&self, login: NextLogin) -> Resp {
        self.provider.next_login(login);
        let started = self.start().await;
        let callback = self.authorize(&started).await;
        self.get(&callback, Some(&started.cookie)).await
    }

    pub(crate) async fn users(&self) -> Vec<String> {
        let users = self
            .app
            .state
            .store()
            .list_users(None, 100)
            .await
            .expect("users");
        users.into_iter().map(|u| u.email).collect()
    }

    pub(crate) async fn audit_actions(&self) -> Vec<String> {
        let r = self.app.get_path("/api/v1/audit?limit=100").await;
        let data = r.data(StatusCode::OK).as_array().expect("a list").clone();
        data.iter()
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect()
    }
}

fn refused(r: &Resp, status: StatusCode, code: &str, words: &str) {
    assert_error(r, status, code);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{words:?} not in {message:?}");
}

#[tokio::test]
async fn a_first_login_creates_a_verified_user_and_the_next_maps_to_it() {
    let f = flow(Signup::Open).await;
    let r = f
        .sign_in(NextLogin::verified("sub-ada", "ada@example.com"))
        .await;
    let tokens = Tokens::from_resp(&r);
    assert!(
        r.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().is_ok_and(|c| c.contains("plinth_oidc=;"))),
        "the binding cookie is cleared"
    );
    let me = f.app.me(Some(&tokens.access)).await;
    let me = me.data(StatusCode::OK).clone();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "user");
    assert_eq!(me["email_verified"], true);
    // The refresh token works as a password login's does.
    f.app.refresh(&tokens.refresh).await.data(StatusCode::OK);
    // The same subject again, even with another email now: the same account.
    let again = f
        .sign_in(NextLogin::verified("sub-ada", "ada.new@example.com"))
        .await;
    let again = Tokens::from_resp(&again);
    let me2 = f.app.me(Some(&again.access)).await;
    assert_eq!(me2.data(StatusCode::OK)["id"], me["id"]);
    assert_eq!(f.users().await.len(), 2, "the admin and ada only");
    let actions = f.audit_actions().await;
    for action in ["auth.oidc_login", "auth.oidc_link", "account.create"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn an_existing_password_account_is_linked_by_a_verified_email() {
    let f = flow(Signup::Off).await;
    let (ada, _) = make_user(&f.app.state, "ada@example.com", Role::User).await;
    // A verified address (an unverified one is claimed: `oidc_accounts`).
    let verified = plinth_store::UserChanges {
        email_verified: Some(true),
        ..plinth_store::UserChanges::default()
    };
    let ctx = plinth_store::WriteCtx::new(plinth_core::Principal::local_admin(), "test");
    f.app
        .state
        .store()
        .update_user(&ctx, ada.id, verified, None)
        .await
        .expect("verified");
    let r = f
        .sign_in(NextLogin::verified("sub-ada", "ADA@example.com"))
        .await;
    let tokens = Tokens::from_resp(&r);
    let me = f.app.me(Some(&tokens.access)).await;
    assert_eq!(me.data(StatusCode::OK)["id"], ada.id.to_string());
    // The password still works; nothing else was made.
    f.app.login_ok("ada@example.com", PASSWORD).await;
    assert_eq!(f.users().await.len(), 2);
}

#[tokio::test]
async fn an_unverified_email_neither_links_nor_creates() {
    let f = flow(Signup::Open).await;
    make_user(&f.app.state, "ada@example.com", Role::User).await;
    let before = f.audit_actions().await.len();
    for (sub, email, verified) in [
        ("sub-1", Some("ada@example.com"), Some(false)),
        ("sub-2", Some("ada@example.com"), None),
        ("sub-3", Some("new@example.com"), Some(false)),
        ("sub-4", None, Some(true)),
    ] {
        let mut login = NextLogin::verified(sub, "x@example.com");
        login.email = email.map(str::to_owned);
        login.email_verified = verified;
        let r = f.sign_in(login).await;
        refused(
            &r,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "not say this email address is verified",
        );
    }
    assert_eq!(f.users().await.len(), 2, "nothing created");
    let actions = f.audit_actions().await;
    assert!(
        !actions.iter().any(|a| a == "auth.oidc_link"),
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.oidc_failed").count(),
        4,
        "{actions:?}"
    );
    assert_eq!(
        actions.len(),
        before + 4,
        "nothing but the refusals: {actions:?}"
    );
    // The same subject, verified later, links then (nothing was half-written before).
    let r = f
        .sign_in(NextLogin::verified("sub-1", "ada@example.com"))
        .await;
    Tokens::from_resp(&r);
}

#[tokio::test]
async fn sign_up_off_refuses_new_accounts_but_lets_linked_ones_in() {
    let f = flow(Signup::Off).await;
    let r = f
        .sign_in(NextLogin::verified("sub-new", "new@example.com"))
        .await;
    refused(&r, StatusCode::FORBIDDEN, "FORBIDDEN", "sign-up is off");
    assert_eq!(f.users().await.len(), 1);
    make_user(&f.app.state, "bob@example.com", Role::User).await;
    let r = f
        .sign_in(NextLogin::verified("sub-bob", "bob@example.com"))
        .await;
    Tokens::from_resp(&r);
    // Linked: in again by subject alone.
    let mut by_subject = NextLogin::verified("sub-bob", "other@example.com");
    by_subject.email_verified = Some(false);
    Tokens::from_resp(&f.sign_in(by_subject).await);
}

#[tokio::test]
async fn forged_replayed_and_unbound_states_are_refused() {
    let f = flow(Signup::Open).await;
    let started = f.start().await;
    let callback = f.authorize(&started).await;
    // A forged state, with the right cookie.
    let forged = format!(
        "{}?code=abc&state=forged",
        f.app.url("/api/v1/auth/oidc/test/callback")
    );
    let r = f.get(&forged, Some(&started.cookie)).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "sign-in state",
    );
    // No cookie, or another browser's.
    let r = f.get(&callback, None).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "sign-in state",
    );
    let other = f.start().await;
    let r = f.get(&callback, Some(&other.cookie)).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "sign-in state",
    );
    // The browser that started it completes it, once.
    Tokens::from_resp(&f.get(&callback, Some(&started.cookie)).await);
    let r = f.get(&callback, Some(&started.cookie)).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "already used",
    );
    // Hostile input: a huge state, a cookie with junk.
    let huge = format!(
        "{}?code=a&state={}",
        f.app.url("/api/v1/auth/oidc/test/callback"),
        "s".repeat(5000)
    );
    let r = f.get(&huge, Some(&started.cookie)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let r = f
        .get(&callback, Some("x=y; plinth_oidc=; plinth_oidc=junk"))
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let actions = f.audit_actions().await;
    assert!(
        actions.iter().filter(|a| *a == "auth.oidc_failed").count() >= 4,
        "{actions:?}"
    );
}

#[tokio::test]
async fn id_token_flaws_are_refused_and_create_nothing() {
    let f = flow(Signup::Open).await;
    type Knob = fn(&mut NextLogin);
    let cases: [(Knob, &str); 4] = [
        (|l| l.wrong_nonce = true, "nonce"),
        (|l| l.foreign_key = true, "signature"),
        (|l| l.wrong_audience = true, "audience"),
        (|l| l.expired = true, "expired"),
    ];
    for (knob, words) in cases {
        let mut login = NextLogin::verified("sub-eve", "eve@example.com");
        knob(&mut login);
        let r = f.sign_in(login).await;
        refused(&r, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", words);
    }
    assert_eq!(f.users().await.len(), 1, "nothing created");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_an_unknown_kid_is_refused() {
    let f = flow(Signup::Open).await;
    Tokens::from_resp(&f.sign_in(NextLogin::verified("sub", "a@example.com")).await);
    Tokens::from_resp(&f.sign_in(NextLogin::verified("sub", "a@example.com")).await);
    assert_eq!(f.provider.jwks_fetches(), 1, "the key set is cached");
    // The provider rotates: the unknown kid makes Plinth fetch the set again, once.
    f.provider.rotate_key("k2");
    Tokens::from_resp(&f.sign_in(NextLogin::verified("sub", "a@example.com")).await);
    assert_eq!(f.provider.jwks_fetches(), 2);
    // A kid in no set: refused, and no second refetch within the minute.
    let mut login = NextLogin::verified("sub", "a@example.com");
    login.unknown_kid = true;
    let r = f.sign_in(login).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "unknown key",
    );
    assert_eq!(f.provider.jwks_fetches(), 2, "refetches are rate-limited");
}

#[tokio::test]
async fn the_provider_refusing_is_a_401_that_echoes_nothing_unknown() {
    let f = flow(Signup::Open).await;
    let mut login = NextLogin::verified("sub", "a@example.com");
    login.error = Some("access_denied".to_owned());
    let r = f.sign_in(login.clone()).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "refused: access_denied",
    );
    login.error = Some("<script>alert(1)</script>".to_owned());
    let r = f.sign_in(login).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "provider refused",
    );
    assert!(
        !String::from_utf8_lossy(&r.raw).contains("script"),
        "echoed"
    );
}

#[tokio::test]
async fn the_pkce_verifier_is_really_sent_and_checked() {
    let f = flow(Signup::Open).await;
    let mut login = NextLogin::verified("sub", "a@example.com");
    login.wrong_challenge = true;
    let r = f.sign_in(login).await;
    refused(
        &r,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "authorization code",
    );
    assert!(
        f.provider
            .refusals()
            .iter()
            .any(|r| r.contains("PKCE verifier")),
        "{:?}",
        f.provider.refusals()
    );
    // With the right challenge the same exchange passes: the verifier Plinth sends matches.
    Tokens::from_resp(&f.sign_in(NextLogin::verified("sub", "a@example.com")).await);
    assert_eq!(f.provider.refusals().len(), 1);
}

#[tokio::test]
async fn the_cookie_is_secure_behind_an_https_public_url() {
    let f = flow_at(Signup::Open, "https://plinth.test").await;
    let r = f
        .get(&f.app.url("/api/v1/auth/oidc/test/start"), None)
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.header("location").expect("a Location");
    assert!(
        location.contains(
            "redirect_uri=https%3A%2F%2Fplinth.test%2Fapi%2Fv1%2Fauth%2Foidc%2Ftest%2Fcallback"
        ),
        "{location}"
    );
    let cookie = r.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn unknown_providers_are_404_and_the_list_names_the_configured_ones() {
    let f = flow(Signup::Open).await;
    for path in [
        "/api/v1/auth/oidc/nope/start",
        "/api/v1/auth/oidc/nope/callback?code=a&state=b",
    ] {
        let r = f.get(&f.app.url(path), None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let r = f.get(&f.app.url("/api/v1/auth/oidc"), None).await;
    assert_eq!(
        r.data(StatusCode::OK)["providers"],
        Value::from(vec!["test"])
    );
}
