//! TLS to the upstream against a real TLS server: Debian's nginx in front of the simulator, with
//! a CA and certificates made here, and the gateway driven through its API (API.md, "Running
//! it": an `https://` upstream is verified, always; a certificate that does not verify is a
//! refused connection and nothing was sent).
//!
//! Needs `nginx` (Debian: `apt-get install nginx-light`); as root the test installs it when it is
//! missing. Without it the test fails and says so; it never skips.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::Utc;
use mpospay_gateway::config::{RawSettings, UpstreamSettings, UpstreamTls};
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use mpospay_gateway::startup::{Application, RunOptions};
use mpospay_gateway::store;
use mpospay_gateway::tls::ClientIdentity;
use mpospay_testkit::test_ca::{Issued, TestCa};
use serde_json::{json, Value};

/// A bill the simulator knows (PROTOCOL.md's examples).
const BILL: (&str, &str) = ("AF085713323054", "2042");

/// The simulator behind nginx, which serves TLS with the test CA's certificate.
struct TlsUpstream {
    sandbox: SandboxHandle,
    nginx: Nginx,
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl TlsUpstream {
    /// nginx with a certificate for `server_name`, demanding a client certificate of the same
    /// CA when `mutual`.
    async fn start(server_name: &str, mutual: bool) -> Self {
        let sandbox = Sandbox::new(SandboxConfig::default())
            .spawn(TcpListener::bind("127.0.0.1:0").unwrap())
            .await
            .expect("the simulator starts");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = TestCa::new("mpospay upstream test CA");
        let client_ca = mutual.then(|| ca.write(dir.path(), "client-ca.pem"));
        let nginx = Nginx::start(sandbox.addr(), &ca.issue(server_name), client_ca.as_deref());
        Self {
            sandbox,
            nginx,
            ca,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.nginx.port)
    }

    /// The CA file that verifies nginx's certificate.
    fn right_ca(&self) -> PathBuf {
        self.ca.write(self.dir.path(), "upstream-ca.pem")
    }

    /// A CA file of another authority.
    fn wrong_ca(&self) -> PathBuf {
        TestCa::new("some other CA").write(self.dir.path(), "other-ca.pem")
    }

    /// A client certificate the upstream's CA issued.
    fn client_identity(&self) -> ClientIdentity {
        let (cert_file, key_file) = self
            .ca
            .issue("gateway.test")
            .write(self.dir.path(), "client");
        ClientIdentity {
            cert_file,
            key_file,
        }
    }

    /// What reached the simulator.
    fn received(&self) -> usize {
        self.sandbox.received().len()
    }
}

/// A gateway on port 0 with a fresh SQLite database, an operator key, and `tls` to `upstream`.
struct Gateway {
    address: String,
    key: String,
    http: awc::Client,
    server: actix_web::dev::ServerHandle,
}

async fn spawn_gateway(upstream: &TlsUpstream, database_url: &str, tls: UpstreamTls) -> Gateway {
    let mut settings = RawSettings {
        listen: "127.0.0.1:0".into(),
        database_url: Some(database_url.into()),
        database_max_connections: 4,
        ..RawSettings::default()
    }
    .validate()
    .expect("default settings are valid");
    settings.upstream = Some(UpstreamSettings {
        max_connections: 4,
        tls,
        ..SandboxConfig::default().upstream_settings(upstream.url())
    });
    settings.zone = chrono_tz::Asia::Jakarta;
    let store = store::connect(database_url, 4)
        .await
        .expect("the database opens and migrates");
    let app = Application::build_with(
        settings,
        RunOptions {
            workers: Some(1),
            reconciler: false,
            ..RunOptions::default()
        },
        store.clone(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.handle();
    actix_rt::spawn(app.run_until_stopped());
    let new = keys::generate("pos-web", Role::Operator, Utc::now());
    store.insert_api_key(&new.record).await.expect("key stored");
    Gateway {
        address,
        key: new.plain,
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        server,
    }
}

impl Gateway {
    async fn post(&self, path: &str, idempotency_key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.address))
            .bearer_auth(&self.key);
        if let Some(key) = idempotency_key {
            request = request.insert_header(("Idempotency-Key", key));
        }
        let mut response = request.send_json(&body).await.expect("the gateway answers");
        let body = response.json().await.expect("a JSON body");
        (response.status().as_u16(), body)
    }

    async fn get(&self, path: &str) -> Value {
        let mut response = self
            .http
            .get(format!("{}{path}", self.address))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("the gateway answers");
        response.json().await.expect("a JSON body")
    }

    async fn inquire(&self) -> (u16, Value) {
        let (bill, product) = BILL;
        self.post(
            &format!("/v1/bills/{bill}/inquiry"),
            None,
            json!({ "product": product }),
        )
        .await
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/gateway.db", dir.path().display())
}

fn trusting(ca_file: PathBuf) -> UpstreamTls {
    UpstreamTls {
        ca_file: Some(ca_file),
        client_identity: None,
    }
}

/// The inquiry failed the way an unreachable upstream does, and nothing reached the simulator.
fn assert_refused(upstream: &TlsUpstream, (status, body): (u16, Value)) {
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    assert_eq!(upstream.received(), 0, "nothing may reach the simulator");
}

#[actix_rt::test]
async fn an_https_upstream_is_reached_when_its_ca_is_trusted() {
    let upstream = TlsUpstream::start("127.0.0.1", false).await;
    let db = tempfile::tempdir().unwrap();
    let gateway = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.right_ca())).await;
    let (status, body) = gateway.inquire().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(upstream.sandbox.count(MessageType::Inquiry), 1);
    gateway.stop().await;
}

#[actix_rt::test]
async fn a_certificate_of_another_ca_is_refused_and_nothing_is_sent() {
    let upstream = TlsUpstream::start("127.0.0.1", false).await;
    let db = tempfile::tempdir().unwrap();
    let gateway = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.wrong_ca())).await;
    assert_refused(&upstream, gateway.inquire().await);
    gateway.stop().await;
    // The system's roots alone do not trust a private CA either.
    let gateway = spawn_gateway(&upstream, &sqlite_url(&db), UpstreamTls::default()).await;
    assert_refused(&upstream, gateway.inquire().await);
    gateway.stop().await;
}

#[actix_rt::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let upstream = TlsUpstream::start("h2h.other.example", false).await;
    let db = tempfile::tempdir().unwrap();
    let gateway = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.right_ca())).await;
    assert_refused(&upstream, gateway.inquire().await);
    gateway.stop().await;
}

#[actix_rt::test]
async fn mutual_tls_works_with_the_client_certificate_and_is_refused_without() {
    let upstream = TlsUpstream::start("127.0.0.1", true).await;
    let db = tempfile::tempdir().unwrap();
    let without = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.right_ca())).await;
    assert_refused(&upstream, without.inquire().await);
    without.stop().await;

    let tls = UpstreamTls {
        ca_file: Some(upstream.right_ca()),
        client_identity: Some(upstream.client_identity()),
    };
    let with = spawn_gateway(&upstream, &sqlite_url(&db), tls).await;
    let (status, body) = with.inquire().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.sandbox.count(MessageType::Inquiry), 1);
    with.stop().await;
}

/// A payment whose TLS handshake fails was certainly not sent: it fails at once, it is never
/// `pending` (no advice, no unknown outcome), and the simulator saw no payment.
#[actix_rt::test]
async fn a_payment_through_an_upstream_whose_certificate_does_not_verify_fails_not_pending() {
    let upstream = TlsUpstream::start("127.0.0.1", false).await;
    let db = tempfile::tempdir().unwrap();
    let trusted = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.right_ca())).await;
    let (status, inquiry) = trusted.inquire().await;
    assert_eq!(status, 200, "{inquiry}");
    trusted.stop().await;

    // The same database, now with a CA that does not verify the upstream.
    let gateway = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.wrong_ca())).await;
    let (bill, product) = BILL;
    let (status, body) = gateway
        .post(
            &format!("/v1/bills/{bill}/payment"),
            Some(&uuid::Uuid::now_v7().to_string()),
            json!({ "product": product, "inquiryId": inquiry["id"] }),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    assert_eq!(upstream.sandbox.count(MessageType::Payment), 0);

    let id = body["error"]["transactionId"]
        .as_str()
        .expect("the failed payment's transaction id");
    let transaction = gateway.get(&format!("/v1/transactions/{id}")).await;
    assert_eq!(transaction["status"], "failed", "{transaction}");
    let outcomes: Vec<&Value> = transaction["exchanges"]
        .as_array()
        .expect("the exchanges")
        .iter()
        .map(|exchange| &exchange["outcome"])
        .collect();
    assert_eq!(outcomes, [&json!("not_sent")], "{transaction}");
    // And the inquiry can be paid once the upstream verifies again: nothing was left pending.
    gateway.stop().await;
    let trusted = spawn_gateway(&upstream, &sqlite_url(&db), trusting(upstream.right_ca())).await;
    let (status, body) = trusted
        .post(
            &format!("/v1/bills/{bill}/payment"),
            Some(&uuid::Uuid::now_v7().to_string()),
            json!({ "product": product, "inquiryId": inquiry["id"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.sandbox.count(MessageType::Payment), 1);
    trusted.stop().await;
}

/// Debian's nginx on a free loopback port, in the foreground, with its files in a temporary
/// directory: TLS with `server`'s certificate, `proxy_pass` to the simulator.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(simulator: SocketAddr, server: &Issued, client_ca: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let (cert, key) = server.write(dir.path(), "server");
        let port = free_port();
        let client_auth = client_ca
            .map(|ca| {
                format!(
                    "ssl_client_certificate {}; ssl_verify_client on;",
                    ca.display()
                )
            })
            .unwrap_or_default();
        let d = dir.path().display();
        let config = format!(
            r#"
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        {client_auth}
        location / {{
            proxy_http_version 1.1;
            proxy_pass http://{simulator};
        }}
    }}
}}
"#,
            cert = cert.display(),
            key = key.display(),
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx.conf is written");
        // One process, no user switch: the files here are readable by the one who runs the test.
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            port,
            _dir: dir,
        };
        nginx.wait_listening();
        nginx
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("error.log"));
                panic!("nginx exited ({status}): {}", log.unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nginx` on the PATH or in /usr/sbin; as root, installed with apt-get when missing (once per
/// test binary: the tests run in parallel).
fn nginx_binary() -> &'static Path {
    static NGINX: OnceLock<PathBuf> = OnceLock::new();
    NGINX.get_or_init(|| {
        let find = || {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                .chain([PathBuf::from("/usr/sbin")])
                .map(|dir| dir.join("nginx"))
                .find(|candidate| candidate.is_file())
        };
        if let Some(found) = find() {
            return found;
        }
        if running_as_root() {
            let installed = Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "nginx-light"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
            if matches!(installed, Ok(status) if status.success()) {
                if let Some(found) = find() {
                    return found;
                }
            }
        }
        panic!(
            "these tests need nginx as the TLS server in front of the simulator, and it is not \
             installed (nor could it be installed here): `apt-get install nginx-light` (Debian)"
        )
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
