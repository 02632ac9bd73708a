//! Throughput measured with wrk (Debian's package: C, epoll, one thread): the same lean client
//! for every target, so that a ratio compares the servers and not the load generators. The
//! harness's own client costs more CPU per request than wrk does, and on two shared cores that
//! slowed the fast references more than the gateway (it flattered the ratios).
//!
//! Each run is one `wrk` process with a Lua script made here: the request (method, path,
//! headers, body) and, where a scenario needs it, what changes per request (a bill number, a
//! fresh Idempotency-Key and customer number). The script's `done` prints one JSON line: the
//! counts and latency percentiles this module reads.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// One request, as wrk sends it.
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a script changes from one request to the next.
#[derive(Debug, Clone, Copy)]
pub enum Vary {
    /// The same request every time (signed H2H messages: the signature covers the body).
    Nothing,
    /// `{bill}` in the path: a BPJS bill number (`8888` + 9 digits) per request.
    Bill,
    /// A purchase: `{customer}` in the body (`0813` + 8 digits) and the Idempotency-Key fresh
    /// per request, both unique within the run (`tag` keeps runs apart).
    Purchase,
}

/// Whether wrk is installed, and which.
pub fn version() -> Option<String> {
    let output = std::process::Command::new("wrk").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    text.lines()
        .find(|line| line.starts_with("wrk"))
        .map(|line| line.trim().to_string())
}

/// The Lua script for `request`, varied per `vary`; `tag` and `seed` make its keys and numbers
/// unique per run.
pub fn script(request: &Request, vary: Vary, tag: &str, seed: u64) -> String {
    let mut lua = String::new();
    let _ = writeln!(lua, "wrk.method = {}", lua_string(request.method));
    let _ = writeln!(lua, "wrk.path = {}", lua_string(&request.path));
    let _ = writeln!(lua, "wrk.body = {}", lua_string(&request.body));
    for (name, value) in &request.headers {
        let _ = writeln!(
            lua,
            "wrk.headers[{}] = {}",
            lua_string(name),
            lua_string(value)
        );
    }
    let _ = writeln!(lua, "local n = {}", seed % 100_000_000);
    match vary {
        Vary::Nothing => {}
        Vary::Bill => lua.push_str(
            "request = function()\n\
             \x20 n = n + 1\n\
             \x20 local path = string.gsub(wrk.path, \"{bill}\", string.format(\"8888%09d\", n % 1000000000))\n\
             \x20 return wrk.format(nil, path)\n\
             end\n",
        ),
        Vary::Purchase => {
            let _ = writeln!(lua, "local tag = {}", lua_string(tag));
            lua.push_str(
                "request = function()\n\
                 \x20 n = n + 1\n\
                 \x20 wrk.headers[\"Idempotency-Key\"] = tag .. \"-\" .. n\n\
                 \x20 local body = string.gsub(wrk.body, \"{customer}\", string.format(\"0813%08d\", n % 100000000))\n\
                 \x20 return wrk.format(nil, nil, nil, body)\n\
                 end\n",
            );
        }
    }
    lua.push_str(
        "done = function(summary, latency, requests)\n\
         \x20 local e = summary.errors\n\
         \x20 io.write(string.format('WRK_JSON {\"requests\":%d,\"duration_us\":%d,\"status_errors\":%d,\
         \"socket_errors\":%d,\"timeouts\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d}\\n',\n\
         \x20   summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,\n\
         \x20   latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))\n\
         end\n",
    );
    lua
}

/// A Lua string literal holding `text`.
fn lua_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs wrk once against `addr` with `script` (written into `dir`): one thread, `connections`
/// keep-alive connections, `duration`. Returns the run as the suite records it:
/// `throughput` counts only 2xx answers.
pub async fn run(
    addr: SocketAddr,
    script: &str,
    connections: usize,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<Value> {
    let path = dir.join(format!("wrk-{}.lua", std::process::id()));
    std::fs::write(&path, script).context("writing the wrk script")?;
    let mut command = tokio::process::Command::new("wrk");
    command
        .args(["-t1", "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--timeout", "10s", "-s"])
        .arg(&path)
        .arg(format!("http://{addr}"))
        .kill_on_drop(true);
    let output = command.output().await.context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("WRK_JSON "))
        .with_context(|| format!("no result line in wrk's output: {text}"))?;
    let raw: Value = serde_json::from_str(line).context("wrk's result line")?;
    let get = |name: &str| raw[name].as_f64().unwrap_or(0.0);
    let seconds = get("duration_us") / 1e6;
    let ok = get("requests") - get("status_errors");
    Ok(json!({
        "throughput": if seconds > 0.0 { ok / seconds } else { 0.0 },
        "requests": get("requests"),
        "errors": get("status_errors") + get("socket_errors") + get("timeouts"),
        "p50_ms": get("p50_us") / 1e3,
        "p90_ms": get("p90_us") / 1e3,
        "p99_ms": get("p99_us") / 1e3,
        "max_ms": get("max_us") / 1e3,
        "generator": "wrk",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_what_they_embed() {
        let request = Request {
            method: "POST",
            path: "/v1/bills/{bill}/inquiry".into(),
            headers: vec![("Authorization".into(), "Bearer a\"b".into())],
            body: r#"{"product":"1501"}"#.into(),
        };
        let lua = script(&request, Vary::Bill, "t", 7);
        assert!(lua.contains(r#"wrk.body = "{\"product\":\"1501\"}""#));
        assert!(lua.contains(r#"wrk.headers["Authorization"] = "Bearer a\"b""#));
        assert!(lua.contains("local n = 7"));
    }
}
