//! TLS built in (issue 12): `--tls-cert`/`--tls-key` serve HTTPS with TLS 1.2 and 1.3 and HSTS;
//! SIGHUP replaces the certificate for new connections without dropping open ones.

use std::time::{Duration, Instant};

use crate::harness::TestServer;

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn trusting(pem: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
}

#[tokio::test]
async fn https_with_hsts_and_a_certificate_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = self_signed();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let s = TestServer::start_with(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ])
    .await;
    assert!(s.origin.starts_with("https://127.0.0.1:"), "{}", s.origin);
    assert!(s.base.starts_with("https://"), "{}", s.base);

    // SCIM over TLS, with HSTS on every response.
    let r = s.get("/Users").await;
    r.expect(200);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert!(r.json["Resources"].is_array());
    // TLS 1.2 is accepted too; plain HTTP on the TLS port is not served.
    let tls12 = trusting(&cert_a)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let r = tls12
        .get(format!("{}/healthz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let plain = s.origin.replacen("https://", "http://", 1);
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{plain}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        r.as_ref().map_or(true, |r| r.status().as_u16() != 200),
        "plain HTTP was served on the TLS port: {r:?}"
    );

    // A client with a connection open on the old certificate.
    let old = trusting(&cert_a).build().unwrap();
    let r = old
        .get(format!("{}/healthz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A new certificate and key in the same files, then SIGHUP.
    let (cert_b, key_b) = self_signed();
    std::fs::write(&cert_path, &cert_b).unwrap();
    std::fs::write(&key_path, &key_b).unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let fresh = trusting(&cert_b).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = fresh.get(format!("{}/healthz", s.origin)).send().await {
            assert_eq!(r.status().as_u16(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served:\n{}",
            s.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        s.stderr().contains("TLS certificate reloaded"),
        "{}",
        s.stderr()
    );
    // The connection opened before the reload is still served...
    let r = old
        .get(format!("{}/healthz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // ...while a new connection trusting only the old certificate is refused.
    let r = trusting(&cert_a)
        .build()
        .unwrap()
        .get(format!("{}/healthz", s.origin))
        .send()
        .await;
    assert!(
        r.is_err(),
        "the old certificate is still served to new connections"
    );

    // A broken file on reload keeps the current certificate.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.stderr().contains("TLS certificate reload failed") {
        assert!(Instant::now() < deadline, "{}", s.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = trusting(&cert_b)
        .build()
        .unwrap()
        .get(format!("{}/healthz", s.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn a_certificate_without_its_key_or_with_the_wrong_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed();
    let (_, other_key) = self_signed();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, other_key).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(crate::harness::bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--database", "sqlite::memory:"])
            .args(args)
            .env_remove("ROSTER_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--tls-cert", cert_path.to_str().unwrap()]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = run(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(err.contains("does not belong"), "{err}");
}

/// A unit file's `ExecReload` sends SIGHUP whether or not TLS is on: without TLS it must not
/// stop the server (SIGHUP's default action would); it re-reads the secret key file.
#[tokio::test]
async fn sighup_without_tls_keeps_serving() {
    let s = TestServer::start().await;
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.stderr().contains("secret key file reloaded") {
        assert!(Instant::now() < deadline, "{}", s.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.get("/Users").await.expect(200);
}
